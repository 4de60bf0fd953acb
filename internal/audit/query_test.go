package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

// seedEntries writes n chained entries directly (much faster than Append
// one by one), each shaped by shape, and returns them.
func seedEntries(tb testing.TB, db *database.DB, n int, shape func(i int, e *audit.Entry)) []audit.Entry {
	tb.Helper()
	entries := make([]audit.Entry, n)
	prev := audit.GenesisHash
	for i := range entries {
		e := &entries[i]
		e.Seq = int64(i + 1)
		e.Outcome = audit.Success
		e.Action = audit.ActionSignIn
		shape(i, e)
		e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
		e.PrevHash = prev
		e.Hash = audit.ComputeHash(e)
		prev = e.Hash
	}
	if err := db.Gorm.CreateInBatches(entries, 500).Error; err != nil {
		tb.Fatal(err)
	}
	if err := audit.SyncHead(context.Background(), db.Gorm); err != nil {
		tb.Fatal(err)
	}
	return entries
}

var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// shape gives 60 entries a spread of actors, actions, targets, outcomes and
// times (one per hour).
func shape(i int, e *audit.Entry) {
	e.OccurredAt = base.Add(time.Duration(i) * time.Hour)
	e.Actor = []string{"olivia", "mia", "sam"}[i%3]
	e.Action = []string{audit.ActionSignIn, "stock.create", "upload.start", audit.ActionAccessDenied}[i%4]
	e.TargetType = []string{audit.TargetStock, audit.TargetUpload, audit.TargetUser}[i%3]
	e.TargetID = fmt.Sprint(i % 7)
	e.Outcome = audit.Outcomes[i%len(audit.Outcomes)]
	if i%5 == 0 {
		e.WxRequestNo = fmt.Sprintf("REQ_%04d_Abc", i)
	}
	if i == 13 {
		e.TargetID = "50%_off"
	}
}

// collect pages through everything f selects, newest first, in pages of
// size, and checks that walking back with After returns the same pages.
func collect(t *testing.T, db *database.DB, f audit.Filter, size int) []int64 {
	t.Helper()
	ctx := context.Background()
	var seqs []int64
	var pages []audit.Page
	cur := audit.Cursor{}
	for range 100 {
		p, err := audit.List(ctx, db.Gorm, f, cur, size)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) > size {
			t.Fatalf("page of %d entries, size %d", len(p.Entries), size)
		}
		for _, e := range p.Entries {
			seqs = append(seqs, e.Seq)
		}
		pages = append(pages, p)
		if p.Older == 0 {
			break
		}
		cur = audit.Cursor{Before: p.Older}
	}
	// Walk back up from the last page with the Newer cursors.
	for i := len(pages) - 1; i > 0; i-- {
		if pages[i].Newer == 0 {
			t.Fatalf("page %d has no newer cursor", i)
		}
		p, err := audit.List(ctx, db.Gorm, f, audit.Cursor{After: pages[i].Newer}, size)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := seqsOf(p.Entries), seqsOf(pages[i-1].Entries); !slices.Equal(got, want) {
			t.Fatalf("newer page from %d: %v, want %v", pages[i].Newer, got, want)
		}
	}
	if len(pages) > 0 && pages[0].Newer != 0 {
		t.Fatalf("the first page has a newer cursor %d", pages[0].Newer)
	}
	return seqs
}

func seqsOf(es []audit.Entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestListFilters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		entries := seedEntries(t, db, 60, shape)
		cases := []struct {
			name   string
			filter audit.Filter
			match  func(e audit.Entry) bool
		}{
			{"everything", audit.Filter{}, func(audit.Entry) bool { return true }},
			{"user", audit.Filter{Actor: "mia"}, func(e audit.Entry) bool { return e.Actor == "mia" }},
			{"action", audit.Filter{Action: "stock.create"}, func(e audit.Entry) bool { return e.Action == "stock.create" }},
			{"target type", audit.Filter{TargetType: audit.TargetUpload}, func(e audit.Entry) bool { return e.TargetType == audit.TargetUpload }},
			{"target", audit.Filter{TargetType: audit.TargetStock, TargetID: "3"}, func(e audit.Entry) bool {
				return e.TargetType == audit.TargetStock && e.TargetID == "3"
			}},
			{"outcome", audit.Filter{Outcome: audit.Denied}, func(e audit.Entry) bool { return e.Outcome == audit.Denied }},
			{"time range", audit.Filter{From: base.Add(10 * time.Hour), To: base.Add(20 * time.Hour)}, func(e audit.Entry) bool {
				return !e.OccurredAt.Before(base.Add(10*time.Hour)) && e.OccurredAt.Before(base.Add(20*time.Hour))
			}},
			{"time range in another zone", audit.Filter{From: base.Add(10 * time.Hour).In(time.FixedZone("CST", 8*3600))}, func(e audit.Entry) bool {
				return !e.OccurredAt.Before(base.Add(10 * time.Hour))
			}},
			{"user, action and week", audit.Filter{Actor: "olivia", Action: audit.ActionSignIn, From: base, To: base.Add(7 * 24 * time.Hour)}, func(e audit.Entry) bool {
				return e.Actor == "olivia" && e.Action == audit.ActionSignIn
			}},
			{"search request number, any case", audit.Filter{Search: "req_00"}, func(e audit.Entry) bool {
				return strings.Contains(strings.ToLower(e.WxRequestNo), "req_00")
			}},
			{"search target ID", audit.Filter{Search: "6"}, func(e audit.Entry) bool {
				return strings.Contains(e.TargetID, "6") || strings.Contains(e.WxRequestNo, "6")
			}},
			{"search wildcards are literal", audit.Filter{Search: "%_"}, func(e audit.Entry) bool { return e.TargetID == "50%_off" }},
			{"nothing", audit.Filter{Actor: "nobody"}, func(audit.Entry) bool { return false }},
		}
		for _, tc := range cases {
			var want []int64
			for i := len(entries) - 1; i >= 0; i-- {
				if tc.match(entries[i]) {
					want = append(want, entries[i].Seq)
				}
			}
			for _, size := range []int{1, 4, 100} {
				if got := collect(t, db, tc.filter, size); !slices.Equal(got, want) {
					t.Errorf("%s (pages of %d): got %v, want %v", tc.name, size, got, want)
				}
			}
		}
	})
}

// Pages are newest first by time, then by sequence number: an entry written
// late with an earlier time sits at its time, and cursors hold across it.
func TestListOrderAndCursors(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		at := []time.Duration{0, 3, 1, 2, 2, 5} // hours after base, in append order
		for i, h := range at {
			r := rec(i)
			if _, err := audit.Append(ctx, db.Gorm, base.Add(h*time.Hour), r); err != nil {
				t.Fatal(err)
			}
		}
		want := []int64{6, 2, 5, 4, 3, 1} // by time desc, then seq desc
		if got := collect(t, db, audit.Filter{}, 2); !slices.Equal(got, want) {
			t.Fatalf("order %v, want %v", got, want)
		}
		if got := collect(t, db, audit.Filter{From: base.Add(time.Hour), To: base.Add(3 * time.Hour)}, 1); !slices.Equal(got, []int64{5, 4, 3}) {
			t.Fatalf("range: %v", got)
		}
		p, err := audit.List(ctx, db.Gorm, audit.Filter{}, audit.Cursor{At: 5}, 2)
		if err != nil || !slices.Equal(seqsOf(p.Entries), []int64{5, 4}) || p.Older != 4 || p.Newer != 5 {
			t.Fatalf("at 5: %v older %d newer %d %v", seqsOf(p.Entries), p.Older, p.Newer, err)
		}
		p, err = audit.List(ctx, db.Gorm, audit.Filter{}, audit.Cursor{Before: 999}, 2)
		if err != nil || len(p.Entries) != 0 {
			t.Fatalf("cursor naming no entry: %+v %v", p, err)
		}
		actions, err := audit.Actions(ctx, db.Gorm)
		if err != nil || !slices.Equal(actions, []string{audit.ActionSignIn}) {
			t.Fatalf("actions %v %v", actions, err)
		}
	})
}

func TestFilterValidate(t *testing.T) {
	for _, tc := range []struct {
		f  audit.Filter
		ok bool
	}{
		{audit.Filter{}, true},
		{audit.Filter{Outcome: audit.Pending, TargetType: audit.TargetUpload}, true},
		{audit.Filter{Outcome: "maybe"}, false},
		{audit.Filter{TargetType: "planet"}, false},
		{audit.Filter{From: base, To: base}, false},
		{audit.Filter{From: base, To: base.Add(time.Second)}, true},
	} {
		if err := tc.f.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.f, err)
		}
	}
	d := audit.Filter{Actor: "mia", From: base}.Detail()
	if len(d) != 2 || d["actor"] != "mia" || d["from"] != "2026-03-01T00:00:00Z" {
		t.Errorf("detail %v", d)
	}
}

// The export is UTF-8 with a BOM, has the header, quotes commas, quotes and
// newlines, guards against formula injection, and stops at through.
func TestExportCSV(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		tricky := []struct{ actor, ua, target string }{
			{"olivia", `Mozilla/5.0 (X11; Linux), "quoted"`, "a,b"},
			{"=cmd|' /C calc'!A0", "line one\nline two\r\nline three", `say "hi"`},
			{"mia", "", "券批次 12"},
		}
		seedEntries(t, db, 7, func(i int, e *audit.Entry) {
			tr := tricky[i%len(tricky)]
			e.OccurredAt = base.Add(time.Duration(i) * time.Minute)
			e.Actor, e.UserAgent, e.TargetID, e.TargetType = tr.actor, tr.ua, tr.target, audit.TargetStock
			e.Detail = `{"note":"a, \"b\"\nc"}`
		})
		var buf bytes.Buffer
		flushes := 0
		n, err := audit.Export(ctx, db.Gorm, &buf, audit.Filter{}, 6, time.FixedZone("CST", 8*3600), func() { flushes++ })
		if err != nil || n != 6 || flushes == 0 {
			t.Fatalf("export: %d entries, %d flushes, %v", n, flushes, err)
		}
		raw := buf.Bytes()
		if !bytes.HasPrefix(raw, []byte("\xEF\xBB\xBF")) {
			t.Fatalf("no UTF-8 BOM: %q", raw[:8])
		}
		records, err := csv.NewReader(bytes.NewReader(raw[3:])).ReadAll()
		if err != nil {
			t.Fatalf("the export is not valid CSV: %v", err)
		}
		if !slices.Equal(records[0], audit.ExportHeader) {
			t.Fatalf("header %v", records[0])
		}
		if len(records) != 7 {
			t.Fatalf("%d rows, want header + 6", len(records))
		}
		col := func(name string) int { return slices.Index(audit.ExportHeader, name) }
		for _, r := range records[1:] {
			var seq int
			fmt.Sscan(r[col("seq")], &seq)
			tr := tricky[(seq-1)%len(tricky)]
			wantActor := tr.actor
			if strings.HasPrefix(wantActor, "=") {
				wantActor = "'" + wantActor
			}
			if r[col("actor")] != wantActor || r[col("user_agent")] != strings.ReplaceAll(tr.ua, "\r\n", "\n") || r[col("target_id")] != tr.target {
				t.Errorf("row %d: actor %q ua %q target %q", seq, r[col("actor")], r[col("user_agent")], r[col("target_id")])
			}
			if r[col("hash_scheme")] != "1" { // seeded as entries written before scheme 2
				t.Errorf("row %d hash scheme %q", seq, r[col("hash_scheme")])
			}
			if r[col("detail")] != `{"note":"a, \"b\"\nc"}` {
				t.Errorf("row %d detail %q", seq, r[col("detail")])
			}
			if want := base.Add(time.Duration(seq-1) * time.Minute).In(time.FixedZone("CST", 8*3600)).Format("2006-01-02 15:04:05 -07:00"); r[col("occurred_at_local")] != want {
				t.Errorf("row %d local time %q, want %q", seq, r[col("occurred_at_local")], want)
			}
			if len(r[col("hash")]) != 64 || len(r[col("prev_hash")]) != 64 {
				t.Errorf("row %d hashes %q %q", seq, r[col("prev_hash")], r[col("hash")])
			}
		}
		if records[1][0] != "6" || records[6][0] != "1" {
			t.Fatalf("not newest first up to through: %s … %s", records[1][0], records[6][0])
		}
	})
}

// BenchmarkExport writes many entries as CSV; memory per entry stays small
// and constant (the export reads in batches of audit.ExportBatch).
func BenchmarkExport(b *testing.B) {
	const n = 20000
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			var db *database.DB
			if dialect == "sqlite" {
				db = testdb.SQLite(b)
			} else {
				db = testdb.Postgres(b)
			}
			seedEntries(b, db, n, func(i int, e *audit.Entry) {
				shape(i, e)
				e.UserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko), \"quoted\""
				e.Detail = `{"reason":"not_allowed"}`
			})
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				got, err := audit.Export(ctx, db.Gorm, io.Discard, audit.Filter{}, 0, time.UTC, nil)
				if err != nil || got != n {
					b.Fatalf("exported %d, %v", got, err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
