package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
)

// Backup copies the embedded SQLite database to the file to, online: the
// copy (SQLite's VACUUM INTO) is one read transaction, consistent at its
// start, taken while consoles keep serving and writing. The file must not
// exist; it is created readable by this user only. PostgreSQL is backed up
// with its own tools (pg_dump), which are online too.
func Backup(ctx context.Context, cfg config.Config, logger *slog.Logger, to string, out io.Writer) error {
	if to == "" {
		return errors.New("--to FILE is required")
	}
	db, err := database.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if db.Dialect != database.SQLite {
		return errors.New("the console is on PostgreSQL: back it up with pg_dump (see the README, \"Backup and restore\")")
	}
	abs, err := filepath.Abs(to)
	if err != nil {
		return err
	}
	// VACUUM INTO writes into an empty file; creating it first fixes its
	// mode (the backup holds the whole audit log and every user's hash).
	f, err := os.OpenFile(abs, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	f.Close()
	if _, err := db.SQL.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		os.Remove(abs)
		return fmt.Errorf("backup: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return err
	}
	logger.Info("database backed up", "to", abs, "bytes", st.Size())
	fmt.Fprintf(out, "backed up the database to %s (%d bytes)\n", abs, st.Size())
	return nil
}
