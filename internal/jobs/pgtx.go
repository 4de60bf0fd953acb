package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connTx presents a pgx connection that is already inside a transaction
// (begun and to be ended through database/sql) as a pgx.Tx, for River's
// InsertTx. Statements run on the connection, hence in that transaction.
// It cannot commit or roll back the outer transaction; Begin makes a
// savepoint, as pgx does for a nested transaction.
type connTx struct {
	conn  *pgx.Conn
	depth int // savepoint nesting of this handle; 0 for the outer transaction
	done  bool
}

var errOuterTx = errors.New("jobs: the transaction is committed or rolled back by its owner")

func (t *connTx) Begin(ctx context.Context) (pgx.Tx, error) {
	sp := &connTx{conn: t.conn, depth: t.depth + 1}
	if _, err := t.conn.Exec(ctx, "SAVEPOINT "+sp.name()); err != nil {
		return nil, err
	}
	return sp, nil
}

func (t *connTx) name() string { return fmt.Sprintf("river_sp_%d", t.depth) }

func (t *connTx) Commit(ctx context.Context) error {
	if t.depth == 0 {
		return errOuterTx
	}
	if t.done {
		return pgx.ErrTxClosed
	}
	t.done = true
	_, err := t.conn.Exec(ctx, "RELEASE SAVEPOINT "+t.name())
	return err
}

func (t *connTx) Rollback(ctx context.Context) error {
	if t.depth == 0 {
		return errOuterTx
	}
	if t.done {
		return pgx.ErrTxClosed
	}
	t.done = true
	_, err := t.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT "+t.name())
	return err
}

func (t *connTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return t.conn.CopyFrom(ctx, table, cols, src)
}

func (t *connTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.conn.SendBatch(ctx, b)
}

// LargeObjects is not supported (River does not use it).
func (t *connTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (t *connTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.conn.Prepare(ctx, name, sql)
}

func (t *connTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.conn.Exec(ctx, sql, args...)
}

func (t *connTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.conn.Query(ctx, sql, args...)
}

func (t *connTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.conn.QueryRow(ctx, sql, args...)
}

func (t *connTx) Conn() *pgx.Conn { return t.conn }
