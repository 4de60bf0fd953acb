package database_test

import (
	"context"
	"testing"
	"time"

	"voucherconsole/internal/audit"
)

// A log written before hash scheme 2 (migration 7) goes on after the
// upgrade: the new entries follow the last old one, and the whole chain
// verifies. On PostgreSQL this checks that the migration seeds the chain
// head from the last entry.
func TestAuditChainAcrossUpgrade(t *testing.T) {
	ctx := context.Background()
	for _, tc := range unmigrated {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			if err := db.MigrateUpTo(ctx, 6); err != nil {
				t.Fatal(err)
			}
			// Three entries as the release before scheme 2 wrote them.
			prev := audit.GenesisHash
			at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
			for seq := int64(1); seq <= 3; seq++ {
				e := audit.Entry{Seq: seq, OccurredAt: at.Add(time.Duration(seq) * time.Minute), Actor: "admin",
					ActorRoles: "admin", Action: audit.ActionSignIn, Outcome: audit.Success, PrevHash: prev}
				e.Hash = audit.ComputeHash(&e)
				err := db.Gorm.Exec(`INSERT INTO audit_entries (seq, occurred_at, actor, actor_roles, action, outcome, prev_hash, hash)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.Seq, e.OccurredAt, e.Actor, e.ActorRoles, e.Action, string(e.Outcome), e.PrevHash, e.Hash).Error
				if err != nil {
					t.Fatal(err)
				}
				prev = e.Hash
			}
			if _, err := db.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				e, err := audit.Append(ctx, db.Gorm, time.Now(), audit.Record{Actor: "admin", Action: audit.ActionSignOut, Outcome: audit.Success})
				if err != nil {
					t.Fatal(err)
				}
				if e.Seq == 4 && e.PrevHash != prev {
					t.Fatalf("entry 4 follows %s, want the last old entry's hash %s", e.PrevHash, prev)
				}
			}
			res, err := audit.Verify(ctx, db.Gorm)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Intact || res.Checked != 5 {
				t.Fatalf("after the upgrade: %s", res)
			}
		})
	}
}
