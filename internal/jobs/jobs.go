// Package jobs runs the console's background jobs on River
// (github.com/riverqueue/river) over the console's own database: the
// riverpgxv5 driver on the pgx pool for PostgreSQL, the riversqlite driver on
// the single SQLite connection for the embedded database.
//
// Jobs are inserted in the same database transaction as the record that asks
// for them (Engine.Transaction), so an intent and its job commit or roll
// back together on both databases.
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"voucherconsole/internal/database"
)

// migrateLockKey is the PostgreSQL advisory lock that serialises River's
// migrations, so console instances starting together migrate once.
const migrateLockKey = 74280021

// Migrate applies River's own migrations (its job, leader and queue tables).
// Run it after the console's goose migrations, at every start.
func Migrate(ctx context.Context, db *database.DB) error {
	quiet := &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)}
	switch db.Dialect {
	case database.SQLite:
		m, err := rivermigrate.New(riversqlite.New(db.SQL), quiet)
		if err != nil {
			return fmt.Errorf("river migrations: %w", err)
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("river migrate up: %w", err)
		}
		return nil
	case database.Postgres:
		m, err := rivermigrate.New(riverpgxv5.New(db.Pool), quiet)
		if err != nil {
			return fmt.Errorf("river migrations: %w", err)
		}
		// River's migrations each run in their own transaction (one adds an
		// enum value that a later statement uses, which PostgreSQL refuses
		// within one transaction), so instances are serialised by a session
		// lock held on a connection of its own.
		lockConn, err := db.Pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("river migrate: %w", err)
		}
		defer lockConn.Release()
		if _, err := lockConn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
			return fmt.Errorf("river migrate lock: %w", err)
		}
		defer lockConn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLockKey) //nolint:errcheck // released with the session anyway
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("river migrate up: %w", err)
		}
		return nil
	}
	return fmt.Errorf("river migrations: unknown dialect %q", db.Dialect)
}

// Config configures an Engine. Zero durations get the defaults below.
type Config struct {
	// Workers are the job kinds this instance works.
	Workers *river.Workers
	// PeriodicJobs are inserted on schedule by whichever instance River
	// elects leader, so each runs once per period across instances.
	PeriodicJobs []*river.PeriodicJob
	// Queues and their worker counts; nil means {"default": 4}.
	Queues map[string]river.QueueConfig
	Logger *slog.Logger
	// ID names this console instance (in logs and in what it records as
	// having done); empty means host-pid-random.
	ID string
	// JobTimeout cancels a job's context; RescueStuckJobsAfter is when a job
	// still "running" (its process was killed) is retried. Workers should
	// finish well within JobTimeout and continue by snoozing.
	JobTimeout           time.Duration
	RescueStuckJobsAfter time.Duration
	// FetchPollInterval is how often queues are polled for new jobs (SQLite
	// has no LISTEN/NOTIFY, so this bounds the pick-up delay there).
	FetchPollInterval time.Duration
}

// Defaults.
const (
	DefaultJobTimeout           = 25 * time.Second
	DefaultRescueStuckJobsAfter = 30 * time.Second
	DefaultFetchPollInterval    = 200 * time.Millisecond
)

// Enqueue inserts a job inside the transaction it was handed with and
// returns its ID.
type Enqueue func(args river.JobArgs, opts *river.InsertOpts) (int64, error)

// Engine is the River client of one console instance.
type Engine struct {
	db     *database.DB
	id     string
	logger *slog.Logger
	sqlite *river.Client[*sql.Tx] // one of these two is set
	pg     *river.Client[pgx.Tx]
}

// NewInstanceID returns host-pid-random, unique per process.
func NewInstanceID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "console"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// New builds the River client for db. It does not start working jobs (see
// Start) but can insert them at once.
func New(db *database.DB, cfg Config) (*Engine, error) {
	if cfg.ID == "" {
		cfg.ID = NewInstanceID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Queues == nil {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}}
	}
	rc := &river.Config{
		ID:                   cfg.ID,
		Queues:               cfg.Queues,
		Workers:              cfg.Workers,
		PeriodicJobs:         cfg.PeriodicJobs,
		JobTimeout:           orDefault(cfg.JobTimeout, DefaultJobTimeout),
		RescueStuckJobsAfter: orDefault(cfg.RescueStuckJobsAfter, DefaultRescueStuckJobsAfter),
		FetchPollInterval:    orDefault(cfg.FetchPollInterval, DefaultFetchPollInterval),
		// River reports job errors and its own trouble at warn and above;
		// its info lines (every start, stop, leadership change) are noise in
		// the console's log.
		Logger: slog.New(minLevel{cfg.Logger.Handler(), slog.LevelWarn}),
	}
	if rc.FetchPollInterval < 100*time.Millisecond {
		rc.FetchCooldown = rc.FetchPollInterval
	}
	e := &Engine{db: db, id: cfg.ID, logger: cfg.Logger}
	var err error
	switch db.Dialect {
	case database.SQLite:
		e.sqlite, err = river.NewClient(riversqlite.New(db.SQL), rc)
	case database.Postgres:
		e.pg, err = river.NewClient(riverpgxv5.New(db.Pool), rc)
	default:
		err = fmt.Errorf("unknown dialect %q", db.Dialect)
	}
	if err != nil {
		return nil, fmt.Errorf("job engine: %w", err)
	}
	return e, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ID is this instance's name.
func (e *Engine) ID() string { return e.id }

// Start starts working jobs, until Stop.
func (e *Engine) Start(ctx context.Context) error {
	if e.sqlite != nil {
		return e.sqlite.Start(ctx)
	}
	return e.pg.Start(ctx)
}

// Stop waits for running jobs to finish (they end their slice and snooze),
// or cancels them when ctx ends first.
func (e *Engine) Stop(ctx context.Context) error {
	var err error
	if e.sqlite != nil {
		err = e.sqlite.Stop(ctx)
	} else {
		err = e.pg.Stop(ctx)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e.sqlite != nil {
			return e.sqlite.StopAndCancel(cctx)
		}
		return e.pg.StopAndCancel(cctx)
	}
	return err
}

// JobState returns the state of a job, or "" when there is no such job
// (never inserted, or deleted after its retention period).
func (e *Engine) JobState(ctx context.Context, id int64) (rivertype.JobState, error) {
	var (
		row *rivertype.JobRow
		err error
	)
	if e.sqlite != nil {
		row, err = e.sqlite.JobGet(ctx, id)
	} else {
		row, err = e.pg.JobGet(ctx, id)
	}
	if errors.Is(err, river.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return row.State, nil
}

// Transaction runs fn in a database transaction; jobs enqueued through the
// Enqueue it is handed are inserted in that same transaction, so they exist
// if and only if fn's writes commit.
//
// On SQLite the gorm transaction is a *sql.Tx, which River's SQLite driver
// takes as is. On PostgreSQL gorm runs on database/sql over the pgx pool
// while River's pgx driver wants a pgx.Tx: the transaction is begun on one
// pooled connection held for its duration, gorm runs on it through
// database/sql, and River inserts through the same physical connection
// (sql.Conn.Raw), in the same server-side transaction.
func (e *Engine) Transaction(ctx context.Context, fn func(tx *gorm.DB, enqueue Enqueue) error) error {
	if e.sqlite != nil {
		return e.db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
			if !ok {
				return fmt.Errorf("job engine: gorm transaction is %T, not *sql.Tx", tx.Statement.ConnPool)
			}
			return fn(tx, func(args river.JobArgs, opts *river.InsertOpts) (int64, error) {
				res, err := e.sqlite.InsertTx(ctx, sqlTx, args, opts)
				if err != nil {
					return 0, fmt.Errorf("enqueue %s: %w", args.Kind(), err)
				}
				return res.Job.ID, nil
			})
		})
	}
	return e.db.Gorm.WithContext(ctx).Connection(func(c *gorm.DB) error {
		conn, ok := c.Statement.ConnPool.(*sql.Conn)
		if !ok {
			return fmt.Errorf("job engine: gorm connection is %T, not *sql.Conn", c.Statement.ConnPool)
		}
		return c.Transaction(func(tx *gorm.DB) error {
			return fn(tx, func(args river.JobArgs, opts *river.InsertOpts) (int64, error) {
				var id int64
				err := conn.Raw(func(dc any) error {
					sc, ok := dc.(*stdlib.Conn)
					if !ok {
						return fmt.Errorf("driver connection is %T, not pgx stdlib", dc)
					}
					res, err := e.pg.InsertTx(ctx, &connTx{conn: sc.Conn()}, args, opts)
					if err != nil {
						return err
					}
					id = res.Job.ID
					return nil
				})
				if err != nil {
					return 0, fmt.Errorf("enqueue %s: %w", args.Kind(), err)
				}
				return id, nil
			})
		})
	})
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
