package database_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

// The migrations of the two dialects must build the same schema: every
// table, column (its kind of type, nullability, default and primary key),
// index, unique, foreign-key and check constraint, and trigger event. The
// differences below are deliberate, each with its reason; any other
// difference fails TestMigrationParity. Both databases are migrated from
// the embedded migrations, so a migration added to either directory is
// compared without changing this test.
var parityExceptions = map[string]string{
	// PostgreSQL only.
	"postgres only: table audit_head":                             "several instances append to one PostgreSQL log: the head row's lock serialises them; SQLite has a single writer",
	"postgres only: column audit_head.id integer not null":        "(audit_head)",
	"postgres only: column audit_head.seq integer not null":       "(audit_head)",
	"postgres only: column audit_head.prev_hash text not null":    "(audit_head)",
	"postgres only: column audit_head.hash text not null":         "(audit_head)",
	"postgres only: primary key audit_head(id)":                   "(audit_head)",
	"postgres only: check audit_head(id)":                         "(audit_head)",
	"postgres only: index audit_entries(target_id) using gin":     "trigram index for the audit log's free-text search (pg_trgm); SQLite scans",
	"postgres only: index audit_entries(wx_request_no) using gin": "trigram index for the audit log's free-text search (pg_trgm); SQLite scans",
	"postgres only: index stocks(name) using gin":                 "trigram index for the stock name search (pg_trgm); SQLite scans",
	"postgres only: trigger audit_entries before truncate":        "SQLite has no TRUNCATE",
	"postgres only: index uploads(status) where …":                "PostgreSQL indexes only the active uploads (a partial index); SQLite indexes every status, see the next line",
	"sqlite only: index uploads(status)":                          "the same lookups of active uploads; the whole column, as SQLite is one instance's small table",
}

// TestMigrationParity migrates a fresh database of each dialect and compares
// what each has.
func TestMigrationParity(t *testing.T) {
	lite := describeSchema(t, testdb.SQLite(t))
	pg := describeSchema(t, testdb.Postgres(t))
	if len(lite) < 20 || len(pg) < 20 {
		t.Fatalf("schema descriptions look empty: %d SQLite facts, %d PostgreSQL facts", len(lite), len(pg))
	}
	var diffs []string
	for f := range lite {
		if !pg[f] {
			diffs = append(diffs, "sqlite only: "+f)
		}
	}
	for f := range pg {
		if !lite[f] {
			diffs = append(diffs, "postgres only: "+f)
		}
	}
	sort.Strings(diffs)
	seen := map[string]bool{}
	for _, d := range diffs {
		seen[d] = true
		if _, ok := parityExceptions[d]; !ok {
			t.Errorf("%s", d)
		}
	}
	// An exception that no longer matches is stale: the schemas converged,
	// or the difference changed shape and must be looked at again.
	for d := range parityExceptions {
		if !seen[d] {
			t.Errorf("listed difference no longer found (remove it from parityExceptions): %s", d)
		}
	}
}

// describeSchema lists a migrated database's schema as comparable facts,
// e.g. "column stocks.name text not null default ”".
func describeSchema(t *testing.T, db *database.DB) map[string]bool {
	t.Helper()
	if db.Dialect == database.Postgres {
		return describePostgres(t, db)
	}
	return describeSQLite(t, db)
}

func query[T any](t *testing.T, db *database.DB, q string, args ...any) []T {
	t.Helper()
	var out []T
	if err := db.Gorm.Raw(q, args...).Scan(&out).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// typeKind maps a declared column type of either dialect to its kind: the
// dialects name types differently (INTEGER / BIGINT / BIGSERIAL, DATETIME /
// TIMESTAMPTZ, BLOB / BYTEA) for the same kind of value.
func typeKind(t *testing.T, table, column, declared string) string {
	t.Helper()
	d := strings.ToLower(strings.TrimSpace(declared))
	if i := strings.IndexByte(d, '('); i >= 0 {
		d = strings.TrimSpace(d[:i])
	}
	switch d {
	case "integer", "int", "bigint", "smallint", "int2", "int4", "int8", "bigserial", "serial":
		return "integer"
	case "text", "varchar", "character varying", "char", "character":
		return "text"
	case "boolean", "bool":
		return "boolean"
	case "datetime", "timestamp", "timestamptz", "timestamp with time zone", "timestamp without time zone":
		return "time"
	case "blob", "bytea":
		return "bytes"
	case "real", "double", "double precision", "float", "float8", "numeric", "decimal":
		return "number"
	}
	t.Fatalf("column %s.%s: unknown type %q: add it to typeKind", table, column, declared)
	return ""
}

var castSuffix = regexp.MustCompile(`::[a-z ]+(\[\])?$`)

// normDefault writes a column default the same way for both dialects:
// PostgreSQL's casts ('x'::text) and either's case (FALSE, false) go.
func normDefault(def *string) string {
	if def == nil {
		return ""
	}
	d := strings.TrimSpace(*def)
	for {
		stripped := castSuffix.ReplaceAllString(d, "")
		if stripped == d {
			break
		}
		d = stripped
	}
	d = strings.TrimSuffix(strings.TrimPrefix(d, "("), ")")
	if strings.HasPrefix(d, "nextval(") { // BIGSERIAL: the primary key's sequence
		return ""
	}
	if !strings.HasPrefix(d, "'") {
		d = strings.ToLower(d)
	}
	return " default " + d
}

func column(t *testing.T, table, name, declared string, notNull bool, def *string) string {
	f := fmt.Sprintf("column %s.%s %s", table, name, typeKind(t, table, name, declared))
	if notNull {
		f += " not null"
	}
	return f + normDefault(def)
}

func index(table string, cols []string, unique bool, method, where string) string {
	f := "index " + table + "(" + strings.Join(cols, ", ") + ")"
	if unique {
		f = "unique " + f
	}
	if method != "" && method != "btree" {
		f += " using " + method
	}
	if where != "" {
		f += " where …"
	}
	return f
}

func describeSQLite(t *testing.T, db *database.DB) map[string]bool {
	facts := map[string]bool{}
	type master struct {
		Type, Name, TblName string
		SQL                 *string
	}
	objects := query[master](t, db, `SELECT type, name, tbl_name, sql FROM sqlite_master
		WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'goose_%' AND tbl_name NOT LIKE 'goose_%'`)
	for _, o := range objects {
		switch o.Type {
		case "table":
			facts["table "+o.Name] = true
			describeSQLiteTable(t, db, o.Name, deref(o.SQL), facts)
		case "trigger":
			m := regexp.MustCompile(`(?i)\b(BEFORE|AFTER|INSTEAD OF)\s+(INSERT|UPDATE|DELETE)\b`).FindStringSubmatch(deref(o.SQL))
			if m == nil {
				t.Fatalf("trigger %s: cannot tell its event from %q", o.Name, deref(o.SQL))
			}
			facts[fmt.Sprintf("trigger %s %s %s", o.TblName, strings.ToLower(m[1]), strings.ToLower(m[2]))] = true
		}
	}
	return facts
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func describeSQLiteTable(t *testing.T, db *database.DB, table, createSQL string, facts map[string]bool) {
	type col struct {
		Cid       int
		Name      string
		Type      string
		NotNull   bool
		DfltValue *string
		Pk        int
	}
	cols := query[col](t, db, "SELECT cid, name, type, \"notnull\" AS not_null, dflt_value, pk FROM pragma_table_info(?)", table)
	var pk []string
	slices.SortFunc(cols, func(a, b col) int { return a.Pk - b.Pk })
	names := map[string]bool{}
	for _, c := range cols {
		names[c.Name] = true
		// A primary key is NOT NULL in PostgreSQL whatever its declaration.
		facts[column(t, table, c.Name, c.Type, c.NotNull || c.Pk > 0, c.DfltValue)] = true
		if c.Pk > 0 {
			pk = append(pk, c.Name)
		}
	}
	if len(pk) > 0 {
		facts["primary key "+table+"("+strings.Join(pk, ", ")+")"] = true
	}

	type idx struct {
		Name    string
		Unique  bool
		Origin  string
		Partial bool
	}
	for _, ix := range query[idx](t, db, `SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, table) {
		if ix.Origin == "pk" {
			continue // the primary key, above
		}
		type icol struct {
			Seqno int
			Name  *string
		}
		var ic []string
		for _, c := range query[icol](t, db, "SELECT seqno, name FROM pragma_index_info(?) ORDER BY seqno", ix.Name) {
			ic = append(ic, cmpOr(deref(c.Name), "(expression)"))
		}
		where := ""
		if ix.Partial {
			where = "partial"
		}
		facts[index(table, ic, ix.Unique, "", where)] = true
	}

	type fk struct {
		ID       int
		Seq      int
		Table    string
		From     string
		To       *string
		OnDelete string
	}
	byID := map[int][]fk{}
	for _, k := range query[fk](t, db, `SELECT id, seq, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`, table) {
		byID[k.ID] = append(byID[k.ID], k)
	}
	for _, ks := range byID {
		var from, to []string
		for _, k := range ks {
			from = append(from, k.From)
			to = append(to, cmpOr(deref(k.To), "id"))
		}
		facts[foreignKey(table, from, ks[0].Table, to, ks[0].OnDelete)] = true
	}

	// SQLite does not list CHECK constraints: they are read from the
	// table's CREATE statement, as the columns each expression names.
	for _, expr := range checkExpressions(createSQL) {
		facts["check "+table+"("+strings.Join(namedColumns(expr, names), ", ")+")"] = true
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func foreignKey(table string, from []string, ref string, to []string, onDelete string) string {
	f := fmt.Sprintf("foreign key %s(%s) references %s(%s)", table, strings.Join(from, ", "), ref, strings.Join(to, ", "))
	if d := strings.ToLower(onDelete); d != "" && d != "no action" {
		f += " on delete " + d
	}
	return f
}

var (
	sqlComment  = regexp.MustCompile(`--[^\n]*`)
	sqlString   = regexp.MustCompile(`'(?:[^']|'')*'`)
	checkKey    = regexp.MustCompile(`(?i)\bCHECK\s*\(`)
	sqlIdentRe  = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	quotedIdent = regexp.MustCompile(`"([^"]+)"`)
)

// checkExpressions returns the expressions of every CHECK in a CREATE TABLE
// statement, comments and string literals blanked out.
func checkExpressions(create string) []string {
	s := sqlComment.ReplaceAllString(create, "")
	s = sqlString.ReplaceAllString(s, "''")
	var out []string
	for _, loc := range checkKey.FindAllStringIndex(s, -1) {
		depth, start := 1, loc[1]
		for i := start; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				out = append(out, s[start:i])
				break
			}
		}
	}
	return out
}

// namedColumns lists, sorted, the columns of the table an expression names.
func namedColumns(expr string, columns map[string]bool) []string {
	expr = quotedIdent.ReplaceAllString(expr, "$1")
	found := map[string]bool{}
	for _, w := range sqlIdentRe.FindAllString(expr, -1) {
		if columns[w] {
			found[w] = true
		}
	}
	out := make([]string, 0, len(found))
	for c := range found {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func describePostgres(t *testing.T, db *database.DB) map[string]bool {
	facts := map[string]bool{}
	type table struct{ Name string }
	for _, tb := range query[table](t, db, `SELECT table_name AS name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'goose_%'`) {
		facts["table "+tb.Name] = true
	}

	type col struct {
		Table, Name, Type string
		NotNull           bool
		Def               *string
	}
	for _, c := range query[col](t, db, `SELECT c.relname AS "table", a.attname AS name,
			format_type(a.atttypid, NULL) AS type, a.attnotnull AS not_null,
			pg_get_expr(d.adbin, d.adrelid) AS def
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
			AND c.relname NOT LIKE 'goose_%'`) {
		facts[column(t, c.Table, c.Name, c.Type, c.NotNull, c.Def)] = true
	}

	// Indexes, the primary key's and the unique constraints' included.
	type idx struct {
		Table, Method string
		Primary       bool
		Unique        bool
		Cols          string // comma-separated; "(expression)" for an expression
		Partial       bool
	}
	for _, ix := range query[idx](t, db, `SELECT t.relname AS "table", am.amname AS method,
			x.indisprimary AS primary, x.indisunique AS unique, x.indpred IS NOT NULL AS partial,
			(SELECT string_agg(COALESCE(a.attname, '(expression)'), ',' ORDER BY k.ord)
			   FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
			   LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum AND k.attnum > 0) AS cols
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_class t ON t.oid = x.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		JOIN pg_am am ON am.oid = i.relam
		WHERE n.nspname = current_schema() AND t.relname NOT LIKE 'goose_%'`) {
		cols := strings.Split(ix.Cols, ",")
		if ix.Primary {
			facts["primary key "+ix.Table+"("+strings.Join(cols, ", ")+")"] = true
			continue
		}
		where := ""
		if ix.Partial {
			where = "partial"
		}
		facts[index(ix.Table, cols, ix.Unique, ix.Method, where)] = true
	}

	type con struct {
		Table, Type, Ref, From, To, OnDelete string
	}
	for _, k := range query[con](t, db, `SELECT t.relname AS "table", c.contype AS type,
			COALESCE(r.relname, '') AS ref,
			(SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
			   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS "from",
			COALESCE((SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
			   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum), '') AS "to",
			CASE c.confdeltype WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null' WHEN 'd' THEN 'set default'
			                   WHEN 'r' THEN 'restrict' ELSE '' END AS on_delete
		FROM pg_constraint c
		JOIN pg_class t ON t.oid = c.conrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		LEFT JOIN pg_class r ON r.oid = c.confrelid
		WHERE n.nspname = current_schema() AND c.contype IN ('f', 'c') AND t.relname NOT LIKE 'goose_%'`) {
		from := strings.Split(k.From, ",")
		switch k.Type {
		case "f":
			facts[foreignKey(k.Table, from, k.Ref, strings.Split(k.To, ","), k.OnDelete)] = true
		case "c":
			sort.Strings(from)
			facts["check "+k.Table+"("+strings.Join(from, ", ")+")"] = true
		}
	}

	// Trigger events, from pg_trigger.tgtype's bits (before = 2, insert = 4,
	// delete = 8, update = 16, truncate = 32).
	type trg struct {
		Table  string
		TgType int
	}
	for _, tr := range query[trg](t, db, `SELECT c.relname AS "table", tg.tgtype AS tg_type
		FROM pg_trigger tg
		JOIN pg_class c ON c.oid = tg.tgrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND NOT tg.tgisinternal`) {
		when := "after"
		if tr.TgType&2 != 0 {
			when = "before"
		}
		for bit, event := range map[int]string{4: "insert", 8: "delete", 16: "update", 32: "truncate"} {
			if tr.TgType&bit != 0 {
				facts[fmt.Sprintf("trigger %s %s %s", tr.Table, when, event)] = true
			}
		}
	}
	return facts
}
