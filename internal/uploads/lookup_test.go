package uploads_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay/sandbox"
)

// The known-code look-up is planned as a probe of the (stock_ref, code)
// key with both columns, on a stock holding many codes with its statistics
// current: the plan that made a check cost minutes per chunk was a scan of
// all the stock's codes filtered by value. On PostgreSQL both the plan for
// the chunk at hand and the generic plan a prepared statement may switch to
// are checked.
func TestKnownCodeLookupUsesBothKeyColumns(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		sb := newSandbox(t, sandbox.Options{})
		st := productStock(t, db, sb)
		codes := make([]string, 5000)
		for i := range codes {
			codes[i] = fmt.Sprintf("C%09d", i*37)
		}
		var plans []string
		if db.Dialect == database.Postgres {
			if _, err := db.SQL.ExecContext(ctx, `INSERT INTO stock_codes (stock_ref, code, created_at)
				SELECT $1, 'C' || lpad(g::text, 9, '0'), now() FROM generate_series(1, 200000) AS g`, st.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL.ExecContext(ctx, "ANALYZE stock_codes"); err != nil {
				t.Fatal(err)
			}
			conn, err := db.Pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
				// The codes as a literal in the custom plan would fill the log.
				codes := codes
				if mode == "force_custom_plan" {
					codes = codes[:50]
				}
				if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
					t.Fatal(err)
				}
				rows, err := conn.Query(ctx, "EXPLAIN "+uploads.KnownCodesPostgres, st.ID, codes)
				if err != nil {
					t.Fatal(err)
				}
				var plan strings.Builder
				for rows.Next() {
					var line string
					if err := rows.Scan(&line); err != nil {
						t.Fatal(err)
					}
					plan.WriteString(line + "\n")
				}
				rows.Close()
				p := plan.String()
				plans = append(plans, p)
				if !strings.Contains(p, "Index") || !strings.Contains(p, "stock_codes_pkey") || strings.Contains(p, "Seq Scan") ||
					!strings.Contains(p, "Index Cond: ((stock_ref = ") || !strings.Contains(p, "AND (code = c.code))") {
					t.Errorf("%s: the look-up does not probe the key on both columns:\n%s", mode, p)
				}
			}
		} else {
			if _, err := db.SQL.ExecContext(ctx, `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200000)
				INSERT INTO stock_codes (stock_ref, code, created_at) SELECT ?, printf('C%09d', n), '2026-01-01 00:00:00+00:00' FROM g`, st.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL.ExecContext(ctx, "PRAGMA optimize"); err != nil {
				t.Fatal(err)
			}
			list, _ := json.Marshal(codes)
			rows, err := db.SQL.QueryContext(ctx, "EXPLAIN QUERY PLAN "+uploads.KnownCodesSQLite, string(list), st.ID)
			if err != nil {
				t.Fatal(err)
			}
			var plan strings.Builder
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan.WriteString(detail + "\n")
			}
			rows.Close()
			p := plan.String()
			plans = append(plans, p)
			if !strings.Contains(p, "SCAN j") || !strings.Contains(p, "SEARCH s USING") || !strings.Contains(p, "(stock_ref=? AND code=?)") {
				t.Errorf("the look-up does not probe the key on both columns:\n%s", p)
			}
		}
		t.Logf("%s plans:\n%s", db.Dialect, strings.Join(plans, "\n"))
	})
}
