// Package app wires the console together for each subcommand: it opens the
// database, applies migrations, builds the services and serves HTTP.
package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/approvals"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/handlers"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/metrics"
	"voucherconsole/internal/models"
	"voucherconsole/internal/monitor"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/twofactor"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/users"
	"voucherconsole/internal/wxconn"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/certstore"
	"voucherconsole/internal/wxpay/sandbox"
)

// NewLogger builds the process logger from the settings.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// OpenDatabase opens the configured database and applies pending migrations.
func OpenDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger) (*database.DB, error) {
	db, err := database.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n, err := db.Migrate(ctx, nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		logger.Info("database migrated", "migrations_applied", n, "dialect", db.Dialect)
	}
	return db, nil
}

func usersService(cfg config.Config, db *database.DB) *users.Service {
	return &users.Service{DB: db.Gorm, MaxFailures: cfg.LoginMaxFailures, Lockout: cfg.LoginLockout,
		MaxClientFailures: cfg.LoginMaxClientFailures, MaxHashes: cfg.LoginMaxHashes}
}

// sessionSecret is the secret the session cookies' keys and the pre-send
// OpenID keys are derived from: CONSOLE_SESSION_KEY, or else a random secret
// generated once and kept (mode 0600) in the data directory. It is read
// once, here, and handed to both.
func sessionSecret(cfg config.Config) ([]byte, error) {
	secret := []byte(cfg.SessionKey)
	if len(secret) == 0 {
		path := filepath.Join(cfg.DataDir, "session.key")
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			secret = []byte(strings.TrimSpace(string(data)))
		case errors.Is(err, os.ErrNotExist):
			var b [32]byte
			_, _ = rand.Read(b[:])
			secret = []byte(hex.EncodeToString(b[:]))
			if err := ownerOnlyDir(cfg.DataDir); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, secret, 0o600); err != nil {
				return nil, fmt.Errorf("keep session key: %w", err)
			}
		default:
			return nil, fmt.Errorf("read session key: %w", err)
		}
	}
	if len(secret) < 32 {
		return nil, errors.New("session key must be at least 32 bytes")
	}
	return secret, nil
}

// sessionStore builds the cookie store, its cookies signed and encrypted
// with keys derived from the session secret.
func sessionStore(cfg config.Config, secret []byte) *sessions.CookieStore {
	hashKey := sha256.Sum256(append([]byte("console-session-auth:"), secret...))
	blockKey := sha256.Sum256(append([]byte("console-session-enc:"), secret...))
	store := sessions.NewCookieStore(hashKey[:], blockKey[:])
	store.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   12 * 60 * 60,
		HttpOnly: true,
		Secure:   cfg.BehindTLS,
		SameSite: http.SameSiteLaxMode,
	}
	store.MaxAge(store.Options.MaxAge)
	return store
}

// Console is a running console's parts, for Serve and for tests.
type Console struct {
	Config  config.Config
	DB      *database.DB
	Server  *handlers.Server
	Logger  *slog.Logger
	Users   *users.Service
	Stocks  *stocks.Service
	Ops     *wxops.Store
	WX      *wxpay.Client
	Sandbox *sandbox.Sandbox // nil in live mode
	Uploads *uploads.Service
	Jobs    *jobs.Engine
	Alerts  *alerts.Service // raise alerts: alerts.Raise(ctx, alerts.Alert{…})
	Monitor *monitor.Monitor

	Deactivate *deactivate.Service // actions.go
	Presend    *presend.Service
	TwoFactor  *twofactor.Service // twofactor.go
	Approvals  *approvals.Service // approvals.go
	closers    []func()
}

// Options are parts a caller already has; the zero value builds everything
// from the settings, as `console serve` does.
type Options struct {
	// DB is an open, migrated database that the caller owns and closes; nil
	// opens and migrates the configured one (closed by Console.Close).
	DB *database.DB
	// SandboxKeys are, in sandbox mode, the simulator's keys when its state
	// directory holds none yet; nil generates fresh ones (a second or so:
	// tests generate one set and share it).
	SandboxKeys *sandbox.Keys
	// Now is the clock of the HTTP layer and its sessions; nil is the wall
	// clock. Tests move it to expire sessions.
	Now clock.Func
}

// Build opens the database, migrates it and assembles the console.
func Build(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Console, error) {
	return BuildWith(ctx, cfg, logger, Options{})
}

// BuildWith assembles the console: every dependency built once, in the
// order each needs the ones before it, none changed after construction. On
// error, what was already started is closed again.
func BuildWith(ctx context.Context, cfg config.Config, logger *slog.Logger, opts Options) (c *Console, err error) {
	// Everything in the data directory is the owner's alone, however it
	// was left: the database, the session key, uploads, the sandbox.
	if err := ownerOnlyTree(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	c = &Console{Config: cfg, Logger: logger}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	db := opts.DB
	if db == nil {
		if db, err = OpenDatabase(ctx, cfg, logger); err != nil {
			return nil, err
		}
		c.closers = append(c.closers, func() { db.Close() })
	}
	c.DB = db
	secret, err := sessionSecret(cfg)
	if err != nil {
		return nil, err
	}
	openIDKeys, err := presend.NewKeys(secret)
	if err != nil {
		return nil, err
	}
	c.Users = usersService(cfg, db)
	wx, err := newWxPay(cfg, &certstore.Store{DB: db.Gorm}, logger, opts.SandboxKeys)
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, wx.close, startCertRefresh(wx.Client, logger))
	c.WX, c.Sandbox = wx.Client, wx.Sandbox
	c.Stocks = &stocks.Service{DB: db.Gorm, Search: db.Search, WX: wx.Client, Create: wx.Client}
	c.Ops = &wxops.Store{DB: db.Gorm}
	if wx.Sandbox != nil {
		if err := registerDemoStocks(ctx, c.Stocks, wx.Sandbox, logger); err != nil {
			return nil, err
		}
	}
	catalog := i18n.MustLoad()
	alertSvc, mon, monitoring := newMonitoring(cfg, db, c.Stocks, catalog, logger)
	c.Alerts, c.Monitor = alertSvc, mon
	up, err := startUploads(ctx, cfg, db, wx.Client, wx.Transport, c.Stocks, logger, monitoring)
	if err != nil {
		return nil, err
	}
	c.Uploads, c.Jobs = up.Service, up.Engine
	c.closers = append(c.closers, up.stop) // runs first: jobs stop before the database closes
	c.Deactivate, c.Presend = newActions(cfg, db, wx.Client, openIDKeys, logger)
	if c.Approvals, err = newApprovals(cfg, db, c.Stocks, c.Deactivate, c.Alerts, logger); err != nil {
		return nil, err
	}
	c.Approvals.Uploads, c.Approvals.Jobs = c.Uploads, c.Jobs // an approved upload starts with its decision
	if c.TwoFactor, err = twoFactorService(cfg, db, secret); err != nil {
		return nil, err
	}
	m := metrics.New()
	m.Registry.MustRegister(newStateCollector(db)) // opsmetrics.go
	// The integrity page's verifications run in the background; they stop
	// (recorded as failed) before the database closes.
	verifier := &audit.Verifier{DB: db.Gorm, Owner: c.Jobs.ID(), Log: logger.With("component", "audit").Error}
	c.closers = append(c.closers, verifier.Close)
	c.Server = handlers.New(handlers.Deps{
		Config: cfg, DB: db, Users: c.Users, Catalog: catalog, Sessions: sessionStore(cfg, secret),
		Logger: logger, Metrics: m, Stocks: c.Stocks,
		Uploads: c.Uploads, Deactivate: c.Deactivate, Presend: c.Presend, Alerts: c.Alerts, Monitor: c.Monitor, TwoFactor: c.TwoFactor,
		Approvals: c.Approvals, AuditVerifier: verifier, Now: opts.Now,
		WxConn: &wxconn.Service{Client: wx.Client, Mode: cfg.WxPay.Mode, BaseURL: wx.BaseURL, FallbackURL: wx.FallbackURL, DB: db.Gorm},
	})
	return c, nil
}

// Close releases what Build opened.
func (c *Console) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// Serve runs the console until ctx ends (SIGTERM/SIGINT), then shuts down
// gracefully. On first start with no users it creates the admin account and
// prints its one-time password once to out.
func Serve(ctx context.Context, cfg config.Config, logger *slog.Logger, out io.Writer) error {
	c, err := Build(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	defer c.startResumer(ctx)() // pending deactivations and pre-sends: resent now, and every minute
	pw, err := c.Users.EnsureInitialAdmin(ctx)
	if err != nil {
		return fmt.Errorf("initial admin: %w", err)
	}
	if pw != "" {
		// Printed once, plainly, to out (standard error): never through the
		// structured log, which is shipped and kept.
		fmt.Fprintf(out, "\n首次启动：已创建管理员账号 admin，一次性密码（仅显示这一次，登录后须修改）：\n"+
			"First start: created the admin account; its one-time password (shown only now, must be changed at first sign-in):\n\n"+
			"    username: admin\n    password: %s\n\n", pw)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           c.Server.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("console listening", "url", "http://"+ln.Addr().String(), "config", cfg)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", c.Server.MetricsHandler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		defer msrv.Close()
		logger.Info("metrics listening", "url", "http://"+mln.Addr().String()+"/metrics")
		go func() { errc <- msrv.Serve(mln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// Migrate applies pending migrations and reports how many ran.
func Migrate(ctx context.Context, cfg config.Config, logger *slog.Logger, out io.Writer) error {
	db, err := database.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.Migrate(ctx, nil)
	if err != nil {
		return err
	}
	if err := jobs.Migrate(ctx, db); err != nil { // the job engine's own tables
		return err
	}
	if n == 0 {
		fmt.Fprintln(out, "database is up to date; no migrations applied")
	} else {
		fmt.Fprintf(out, "applied %d migrations\n", n)
	}
	return nil
}

// AddUser creates a user from the command line.
func AddUser(ctx context.Context, cfg config.Config, logger *slog.Logger, username string, roleNames []string, password string) error {
	var rs []models.Role
	for _, n := range roleNames {
		r, ok := models.ParseRole(n)
		if !ok {
			return fmt.Errorf("unknown role %q (operator, manager, support, admin)", n)
		}
		rs = append(rs, r)
	}
	db, err := OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	actor := "console user add"
	if u := os.Getenv("USER"); u != "" {
		actor += " (" + u + ")"
	}
	_, err = usersService(cfg, db).Add(ctx, audit.Context{Actor: actor}, username, password, rs, false)
	return err
}

// VerifyAudit checks the audit chain; it returns whether it is intact.
func VerifyAudit(ctx context.Context, cfg config.Config, logger *slog.Logger, out io.Writer) (bool, error) {
	db, err := OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return false, err
	}
	defer db.Close()
	// Progress every few seconds on a long log, then the result and the
	// pace: the walk streams the chain in batches, in constant memory.
	start, lastShown := time.Now(), time.Now()
	res, err := audit.VerifyStream(ctx, db.Gorm, func(r audit.Result) {
		if time.Since(lastShown) >= 5*time.Second {
			lastShown = time.Now()
			fmt.Fprintf(out, "verified %d of %d entries (%.0f entries/s)\n", r.Checked, r.Total, float64(r.Checked)/time.Since(start).Seconds())
		}
	})
	if err != nil {
		return false, err
	}
	elapsed := time.Since(start)
	fmt.Fprintln(out, res.String())
	fmt.Fprintf(out, "%d entries in %s: %.0f entries/s\n", res.Checked, elapsed.Round(time.Millisecond), float64(res.Checked)/max(elapsed.Seconds(), 1e-9))
	return res.Intact, nil
}
