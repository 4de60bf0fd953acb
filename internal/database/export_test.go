package database

import "context"

// MigrateUpTo applies the migrations up to version, so a test can write
// data as an earlier release did and then upgrade.
func (db *DB) MigrateUpTo(ctx context.Context, version int64) error {
	p, err := db.migrationProvider(nil)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}
