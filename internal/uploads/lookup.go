package uploads

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"voucherconsole/internal/database"
)

// The known-code look-up: one statement per chunk of a file's codes, a set
// operation that probes the (stock_ref, code) primary key once per code, so
// that it costs the same whether the stock holds no code or ten million.
// (`code IN (…500 parameters…)` was planned as a scan of every code of the
// stock filtered by value.)
//
// On PostgreSQL the chunk is one text[] parameter, unnested, each code a
// LATERAL probe of the key: the LIMIT keeps the planner from turning the
// probes into one join, which it costs (random_page_cost) as dearer than
// reading every code of a stock of a few hundred thousand, and then reads
// them all for each chunk; `code = ANY($2)` was planned so too. On SQLite
// the chunk is one JSON array, and the CROSS JOIN makes json_each the outer
// loop (SQLite never reorders a CROSS JOIN), each of its values a look-up
// in the primary key.
const (
	knownCodesPostgres = `SELECT c.code FROM unnest($2::text[]) AS c(code)
		CROSS JOIN LATERAL (SELECT 1 FROM stock_codes AS s WHERE s.stock_ref = $1 AND s.code = c.code LIMIT 1) AS k`
	knownCodesSQLite = "SELECT s.code FROM json_each(?) AS j CROSS JOIN stock_codes AS s WHERE s.stock_ref = ? AND s.code = j.value"
)

// knownCodes returns which of codes the console has seen on the stock.
func (s *Service) knownCodes(ctx context.Context, stockRef int64, codes []string) (map[string]bool, error) {
	known := map[string]bool{}
	if len(codes) == 0 {
		return known, nil
	}
	if s.DB.Dialect == database.Postgres {
		rows, err := s.DB.Pool.Query(ctx, knownCodesPostgres, stockRef, codes)
		if err != nil {
			return nil, err
		}
		var code string
		_, err = pgx.ForEachRow(rows, []any{&code}, func() error {
			known[code] = true
			return nil
		})
		return known, err
	}
	list, err := json.Marshal(codes)
	if err != nil {
		return nil, err
	}
	rows, err := s.DB.SQL.QueryContext(ctx, knownCodesSQLite, string(list), stockRef)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			return nil, err
		}
		known[code] = true
	}
	return known, rows.Err()
}

// insertRows writes rows into table in one COPY on PostgreSQL and in
// multi-row INSERTs inside one transaction on SQLite: a check of a million
// codes writes up to a million problem rows, which row-by-row ORM inserts
// took longer to write than the whole rest of the check.
func (s *Service) insertRows(ctx context.Context, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if s.DB.Dialect == database.Postgres {
		_, err := s.DB.Pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	}
	// The SQLite driver binds a statement's parameters in time that grows
	// with the square of their number, so statements stay small (about 500
	// parameters) and one prepared statement serves every full one.
	per := max(1, 500/len(cols))
	tx, err := s.DB.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	stmt := func(n int) string { return head + strings.TrimSuffix(strings.Repeat(one+",", n), ",") }
	full, err := tx.PrepareContext(ctx, stmt(per))
	if err != nil {
		return err
	}
	defer full.Close()
	args := make([]any, 0, per*len(cols))
	for len(rows) > 0 {
		n := min(per, len(rows))
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if n == per {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, stmt(n), args...)
		}
		if err != nil {
			return err
		}
		rows = rows[n:]
	}
	return tx.Commit()
}

var (
	problemCols = []string{"upload_id", "row_no", "code", "reason", "detail"}
	batchCols   = []string{"upload_id", "batch_no", "request_no", "code_count", "codes", "row_nos", "status", "created_at", "updated_at"}
)

func problemRows(ps []Problem) [][]any {
	out := make([][]any, len(ps))
	for i, p := range ps {
		out[i] = []any{p.UploadID, p.RowNo, p.Code, p.Reason, p.Detail}
	}
	return out
}

func batchRows(bs []Batch) [][]any {
	out := make([][]any, len(bs))
	for i, b := range bs {
		out[i] = []any{b.UploadID, b.BatchNo, b.RequestNo, b.CodeCount, b.Codes, b.RowNos, string(b.Status), b.CreatedAt, b.UpdatedAt}
	}
	return out
}

// analyzeCodes brings the planner's statistics of stock_codes up to date
// after an upload added many codes, so that the statements on it (and the
// stock's code counts) are planned for its real size rather than for the
// empty table it was when it was last analysed.
func (s *Service) analyzeCodes(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	q := "ANALYZE stock_codes"
	if s.DB.Dialect == database.SQLite {
		// Runs ANALYZE where the statistics are stale, cheaply (bounded
		// by analysis_limit).
		q = "PRAGMA optimize"
	}
	if _, err := s.DB.SQL.ExecContext(ctx, q); err != nil {
		s.log().Warn("update code statistics", "err", fmt.Sprint(err))
	}
}
