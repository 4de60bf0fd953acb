package audit_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

// The hashed encoding is json.Marshal's, byte for byte, whatever a field
// holds: a changed byte would make every entry fail to verify.
func TestHashedEncodingIsJSONMarshal(t *testing.T) {
	cases := [][]string{
		{},
		{""},
		{"plain", "2026-01-02T03:04:05.000000Z", "春节满100减10", `{"stock_name":"春节满100减10"}`},
		{`quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f", "<script>&amp;</script>"},
		{"\u2028\u2029", "bad \xff utf-8 \xc3", "emoji 🎟️", "\b\f"},
	}
	for _, c := range cases {
		want, _ := json.Marshal(c)
		if got := audit.AppendJSONStrings(nil, c); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", c, got, want)
		}
	}
}

func FuzzHashedEncoding(f *testing.F) {
	f.Add("a", "b")
	f.Add("<\u2028", "\xff\"")
	f.Fuzz(func(t *testing.T, a, b string) {
		want, _ := json.Marshal([]string{a, b})
		if got := audit.AppendJSONStrings(nil, []string{a, b}); string(got) != string(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

// A chain longer than one read batch verifies, reports its progress batch
// by batch, and a tampered entry past the first batch is found.
func TestVerifyStreamsBatches(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		const n = 5_300
		err := db.Gorm.Transaction(func(tx *gorm.DB) error {
			for i := range n {
				if _, err := audit.Append(ctx, tx, time.Now(), rec(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var calls []int64
		res, err := audit.VerifyStream(ctx, db.Gorm, func(r audit.Result) { calls = append(calls, r.Checked) })
		if err != nil || !res.Intact || res.Checked != n || res.Total != n || res.LastHash == "" {
			t.Fatalf("verify: %+v %v", res, err)
		}
		if len(calls) < 2 || calls[len(calls)-1] != n || calls[0] >= n {
			t.Fatalf("progress calls: %v", calls)
		}
		testdb.DropAuditGuard(t, db)
		if err := db.Gorm.Exec("UPDATE audit_entries SET target_id = 'x' WHERE seq = 5200").Error; err != nil {
			t.Fatal(err)
		}
		res, err = audit.VerifyStream(ctx, db.Gorm, nil)
		if err != nil || res.Intact || res.BrokenSeq != 5200 || res.Problem != audit.ProblemHash || res.LastSeq != 5199 {
			t.Fatalf("tampered: %+v %v", res, err)
		}
		if !strings.Contains(res.String(), "broken at entry 5200") {
			t.Fatal(res.String())
		}
	})
}
