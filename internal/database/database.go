// Package database opens the console's database — embedded SQLite by default,
// PostgreSQL in production — and applies its embedded goose migrations.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"voucherconsole/migrations"
)

// Dialect names the database engine behind a DB.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open console database.
type DB struct {
	Gorm *gorm.DB
	// Search runs the reads whose conditions come from what a user typed —
	// the stock search and the audit log's filters. On PostgreSQL its
	// connections plan each statement for its actual parameters: a plan
	// made for any parameters cannot use the prefix and trigram indexes
	// behind LIKE. Gorm's connections may reuse a statement's plan, which
	// spares the planning on every other statement. On SQLite it is Gorm.
	Search  *gorm.DB
	SQL     *sql.DB
	Dialect Dialect
	// Pool is the pgx pool behind SQL on PostgreSQL (shared with the job
	// engine); nil on SQLite.
	Pool *pgxpool.Pool
	// searchPool and searchSQL are behind Search on PostgreSQL.
	searchPool *pgxpool.Pool
	searchSQL  *sql.DB
}

// Close releases the connections.
func (db *DB) Close() error {
	err := db.SQL.Close()
	if db.searchSQL != nil {
		err = errors.Join(err, db.searchSQL.Close())
	}
	if db.Pool != nil {
		db.Pool.Close()
	}
	if db.searchPool != nil {
		db.searchPool.Close()
	}
	return err
}

// Open connects to url (postgres://…), or to the embedded SQLite database
// console.db in dataDir when url is empty.
func Open(ctx context.Context, url, dataDir string) (*DB, error) {
	if url != "" {
		return OpenPostgres(ctx, url)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dataDir, "console.db")
	// The database file is created owner-only before SQLite opens it:
	// SQLite gives its -wal and -shm files the database file's mode, and
	// would otherwise create it under the process's umask.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	for _, p := range []string{dataDir, path, path + "-wal", path + "-shm"} {
		mode := os.FileMode(0o600)
		if p == dataDir {
			mode = 0o700
		}
		if err := os.Chmod(p, mode); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("restrict %s: %w", p, err)
		}
	}
	return OpenSQLite(path)
}

func gormConfig() *gorm.Config {
	return &gorm.Config{
		Logger:         logger.Discard,
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
}

// OpenPostgres connects through a pgx pool that gorm shares via database/sql,
// and through a second pool for Search.
func OpenPostgres(ctx context.Context, url string) (*DB, error) {
	pool, sqlDB, g, err := openPostgresPool(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	searchPool, searchSQL, search, err := openPostgresPool(ctx, url, map[string]string{"plan_cache_mode": "force_custom_plan"})
	if err != nil {
		sqlDB.Close()
		pool.Close()
		return nil, err
	}
	return &DB{Gorm: g, Search: search, SQL: sqlDB, Dialect: Postgres, Pool: pool, searchPool: searchPool, searchSQL: searchSQL}, nil
}

func openPostgresPool(ctx context.Context, url string, params map[string]string) (*pgxpool.Pool, *sql.DB, *gorm.DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("postgres URL: %w", err)
	}
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open postgres: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), gormConfig())
	if err != nil {
		sqlDB.Close()
		pool.Close()
		return nil, nil, nil, fmt.Errorf("open postgres: %w", err)
	}
	return pool, sqlDB, g, nil
}

// OpenSQLite opens (creating if needed) the SQLite file at path. One open
// connection: SQLite has one writer anyway, and the job engine's SQLite driver
// requires it; WAL lets other processes (console audit verify) read meanwhile.
func OpenSQLite(path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_time_format=sqlite"
	g, err := gorm.Open(sqlite.Open(dsn), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	if err := sqlDB.Ping(); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &DB{Gorm: g, Search: g, SQL: sqlDB, Dialect: SQLite}, nil
}

// migrationProvider builds the goose provider for the dialect. On PostgreSQL a
// session advisory lock serialises migrations, so instances starting together
// migrate once.
func (db *DB) migrationProvider(logger *slog.Logger) (*goose.Provider, error) {
	var (
		dialect goose.Dialect
		fsys    fs.FS
		opts    []goose.ProviderOption
		err     error
	)
	switch db.Dialect {
	case Postgres:
		dialect = goose.DialectPostgres
		fsys, err = fs.Sub(migrations.Postgres, "postgres")
		locker, lerr := lock.NewPostgresSessionLocker()
		if lerr != nil {
			return nil, lerr
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case SQLite:
		dialect = goose.DialectSQLite3
		fsys, err = fs.Sub(migrations.SQLite, "sqlite")
	default:
		return nil, fmt.Errorf("unknown dialect %q", db.Dialect)
	}
	if err != nil {
		return nil, err
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	return goose.NewProvider(dialect, db.SQL, fsys, opts...)
}

// Migrate applies pending migrations and returns how many ran.
func (db *DB) Migrate(ctx context.Context, logger *slog.Logger) (int, error) {
	p, err := db.migrationProvider(logger)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate up: %w", err)
	}
	return len(res), nil
}

// MigrateDownAll rolls every migration back (used by tests and operators
// starting over).
func (db *DB) MigrateDownAll(ctx context.Context) error {
	p, err := db.migrationProvider(nil)
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.SQL.PingContext(ctx)
}
