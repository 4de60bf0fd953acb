package audit_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

func rec(i int) audit.Record {
	return audit.Record{
		Actor:      fmt.Sprintf("user%d", i%3),
		ActorRoles: []string{"operator"},
		Action:     audit.ActionSignIn,
		TargetType: audit.TargetUser,
		TargetID:   fmt.Sprint(i),
		Outcome:    audit.Success,
		ClientIP:   "127.0.0.1",
		UserAgent:  "test, \"agent\"\nline",
		RequestID:  fmt.Sprintf("req-%d", i),
		Detail:     map[string]any{"n": i, "password": "must-not-be-stored"},
	}
}

func TestAppendAndVerify(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		res, err := audit.Verify(ctx, db.Gorm)
		if err != nil || !res.Intact || res.Checked != 0 {
			t.Fatalf("empty log: %+v %v", res, err)
		}
		for i := range 5 {
			if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec(i)); err != nil {
				t.Fatal(err)
			}
		}
		res, err = audit.Verify(ctx, db.Gorm)
		if err != nil || !res.Intact || res.Checked != 5 || res.LastSeq != 5 {
			t.Fatalf("verify: %+v %v", res, err)
		}
		var e audit.Entry
		if err := db.Gorm.Where("seq = 1").Take(&e).Error; err != nil {
			t.Fatal(err)
		}
		if strings.Contains(e.Detail, "must-not-be-stored") {
			t.Fatalf("a password reached the audit row: %s", e.Detail)
		}
		if e.PrevHash != audit.GenesisHash || len(e.Hash) != 64 {
			t.Fatalf("first entry chain fields: %q %q", e.PrevHash, e.Hash)
		}
	})
}

// The append runs inside the caller's transaction: a rollback leaves no entry.
func TestAppendRollsBackWithCaller(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		tx := db.Gorm.Begin()
		defer tx.Rollback() // also when the append fails: an open transaction would hold the test database
		if _, err := audit.Append(ctx, tx, time.Now(), rec(1)); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		var n int64
		db.Gorm.Model(&audit.Entry{}).Count(&n)
		if n != 0 {
			t.Fatalf("%d entries after rollback", n)
		}
	})
}

func TestDatabaseRefusesUpdateAndDelete(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec(1)); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			"UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1",
			"DELETE FROM audit_entries WHERE seq = 1",
		} {
			if err := db.Gorm.Exec(stmt).Error; err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want the append-only refusal", stmt, err)
			}
		}
		if db.Dialect == database.Postgres {
			if err := db.Gorm.Exec("TRUNCATE audit_entries").Error; err == nil {
				t.Error("TRUNCATE was allowed")
			}
		}
	})
}

func TestVerifyFindsTampering(t *testing.T) {
	cases := []struct {
		name    string
		tamper  string
		broken  int64
		problem audit.Problem
	}{
		{"altered field", "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3", 3, audit.ProblemHash},
		{"altered and rehashed", "UPDATE audit_entries SET hash = '" + strings.Repeat("a", 64) + "' WHERE seq = 3", 3, audit.ProblemHash},
		{"deleted entry", "DELETE FROM audit_entries WHERE seq = 3", 3, audit.ProblemSequence},
		{"deleted earlier entry", "DELETE FROM audit_entries WHERE seq = 2", 2, audit.ProblemSequence},
		{"scheme changed", "UPDATE audit_entries SET hash_scheme = 1 WHERE seq = 3", 3, audit.ProblemHash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *database.DB) {
				ctx := context.Background()
				for i := range 5 {
					if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec(i)); err != nil {
						t.Fatal(err)
					}
				}
				testdb.DropAuditGuard(t, db)
				if err := db.Gorm.Exec(tc.tamper).Error; err != nil {
					t.Fatal(err)
				}
				res, err := audit.Verify(ctx, db.Gorm)
				if err != nil {
					t.Fatal(err)
				}
				if res.Intact || res.BrokenSeq != tc.broken || res.Problem != tc.problem {
					t.Fatalf("got %+v, want broken at %d (%s)", res, tc.broken, tc.problem)
				}
				if !strings.Contains(res.String(), fmt.Sprintf("entry %d", tc.broken)) {
					t.Fatalf("message %q does not name the entry", res.String())
				}
			})
		})
	}
}

// Concurrent writers still produce one unbroken chain.
func TestConcurrentAppends(t *testing.T) {
	const writers, each = 8, 500
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		n := each
		if testing.Short() {
			n = 50
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec(w*n+i)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		res, err := audit.Verify(ctx, db.Gorm)
		if err != nil || !res.Intact || res.Checked != int64(writers*n) {
			t.Fatalf("verify after concurrent appends: %+v %v", res, err)
		}
	})
}

// BenchmarkAppendPostgres reports chained appends per second on PostgreSQL
// from 8 concurrent writers.
func BenchmarkAppendPostgres(b *testing.B) {
	db := testdb.Postgres(b)
	ctx := context.Background()
	b.SetParallelism(4) // 4 × GOMAXPROCS writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec(i)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppendSQLite is the same on the embedded database.
func BenchmarkAppendSQLite(b *testing.B) {
	db := testdb.SQLite(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// Entries hashed with the first scheme (written before scheme 2 existed) and
// entries Append writes now form one chain that verifies; on PostgreSQL the
// database's chaining step agrees with the console's for any content.
func TestSchemesChainTogether(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		old := seedEntries(t, db, 4, func(i int, e *audit.Entry) { e.OccurredAt = base.Add(time.Duration(i) * time.Hour) })
		tricky := audit.Record{
			Actor: "王小明", ActorRoles: []string{"operator"}, Action: "stock.deactivate", Outcome: audit.Success,
			TargetType: audit.TargetStock, TargetID: "1:2:\"3\"", UserAgent: "a\tb\u2028<&>",
			Detail: map[string]any{"reason": "门店闭店 \"停止\" : 活动 \\ 结束", "n": 1.5},
		}
		var last *audit.Entry
		for range 3 {
			e, err := audit.Append(ctx, db.Gorm, time.Now(), tricky)
			if err != nil {
				t.Fatal(err)
			}
			last = e
		}
		if last.Seq != 7 || last.HashScheme != audit.SchemeContent {
			t.Fatalf("last entry seq %d scheme %d", last.Seq, last.HashScheme)
		}
		var first audit.Entry
		if err := db.Gorm.Where("seq = 5").Take(&first).Error; err != nil {
			t.Fatal(err)
		}
		if first.PrevHash != old[3].Hash || first.HashScheme != audit.SchemeContent {
			t.Fatalf("entry 5 prev %s scheme %d, want prev %s", first.PrevHash, first.HashScheme, old[3].Hash)
		}
		res, err := audit.Verify(ctx, db.Gorm)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Intact || res.Checked != 7 {
			t.Fatalf("verify: %+v", res)
		}
	})
}

// On PostgreSQL the chain head reveals entries cut off the end of the log,
// which the chain alone cannot; rewinding the head as well hides the cut
// (hence the advice to note the newest hash elsewhere).
func TestVerifyFindsTailCutOnPostgres(t *testing.T) {
	db := testdb.Postgres(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	testdb.DropAuditGuard(t, db)
	if err := db.Gorm.Exec("DELETE FROM audit_entries WHERE seq >= 4").Error; err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(ctx, db.Gorm)
	if err != nil {
		t.Fatal(err)
	}
	if res.Intact || res.Problem != audit.ProblemTail || res.BrokenSeq != 4 || res.LastSeq != 3 {
		t.Fatalf("tail cut: %+v", res)
	}
	if err := audit.SyncHead(ctx, db.Gorm); err != nil { // the head rewound too
		t.Fatal(err)
	}
	if res, err := audit.Verify(ctx, db.Gorm); err != nil || !res.Intact || res.LastSeq != 3 {
		t.Fatalf("after rewinding the head: %+v %v", res, err)
	}
	// The newest entry altered and its hash recomputed: the chain itself
	// holds, only the head still knows the hash it had.
	var last audit.Entry
	if err := db.Gorm.Where("seq = 3").Take(&last).Error; err != nil {
		t.Fatal(err)
	}
	last.Actor = "mallory"
	if err := db.Gorm.Exec("UPDATE audit_entries SET actor = ?, hash = ? WHERE seq = 3", last.Actor, audit.ComputeHash(&last)).Error; err != nil {
		t.Fatal(err)
	}
	if res, err := audit.Verify(ctx, db.Gorm); err != nil || res.Intact || res.BrokenSeq != 3 || res.Problem != audit.ProblemHash {
		t.Fatalf("newest entry rehashed: %+v %v", res, err)
	}
}
