package app

import (
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/twofactor"
)

// twoFactorService builds the second sign-in factor. Its secrets are sealed
// with keys derived from CONSOLE_TOTP_KEY, or else from the session secret
// (set in the environment, or generated owner-only into the data
// directory), so that every instance sharing the database opens them and
// the keys never enter the database.
func twoFactorService(cfg config.Config, db *database.DB, sessionSecret []byte) (*twofactor.Service, error) {
	secret := []byte(cfg.TOTPKey)
	if len(secret) == 0 {
		secret = sessionSecret
	}
	keys, err := twofactor.NewKeys(secret)
	if err != nil {
		return nil, err
	}
	return &twofactor.Service{DB: db.Gorm, Keys: keys, MaxFailures: cfg.LoginMaxFailures, Lockout: cfg.LoginLockout}, nil
}
