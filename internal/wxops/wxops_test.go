package wxops_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxops"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

func TestResendAfter(t *testing.T) {
	for _, tc := range []struct {
		olderThan time.Duration
		attempts  int
		want      time.Duration
	}{
		{2 * time.Minute, 0, 2 * time.Minute}, // left by a crash
		{2 * time.Minute, 1, 2 * time.Minute},
		{2 * time.Minute, 2, 4 * time.Minute},
		{2 * time.Minute, 5, 32 * time.Minute},
		{2 * time.Minute, 6, time.Hour},
		{2 * time.Minute, 1000, time.Hour},
		{0, 7, 0}, // a restart resends everything at once
	} {
		if got := wxops.ResendAfter(tc.olderThan, tc.attempts); got != tc.want {
			t.Errorf("ResendAfter(%v, %d) = %v, want %v", tc.olderThan, tc.attempts, got, tc.want)
		}
	}
}

// Pending lists what is due: an operation that failed often waits longer,
// one touched recently or already ended is not listed.
func TestPendingBacksOff(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		ops := []struct {
			name     string
			attempts int
			idle     time.Duration
			status   models.OperationStatus
		}{
			{"crashed", 0, 3 * time.Minute, models.OpPending},
			{"in-flight", 0, 30 * time.Second, models.OpPending},
			{"failed-thrice-recently", 3, 5 * time.Minute, models.OpPending}, // due after 8 minutes
			{"failed-thrice-long-ago", 3, 9 * time.Minute, models.OpPending},
			{"failed-often", 40, 59 * time.Minute, models.OpPending}, // due after an hour
			{"succeeded", 1, time.Hour, models.OpSucceeded},
		}
		for i, o := range ops {
			op := models.WxOperation{Kind: "test_kind", RequestNo: fmt.Sprintf("REQ%02d", i), Target: o.name, Body: "{}",
				Status: o.status, Attempts: o.attempts, CreatedAt: now.Add(-2 * time.Hour), UpdatedAt: now.Add(-o.idle)}
			if err := db.Gorm.Create(&op).Error; err != nil {
				t.Fatal(err)
			}
			// gorm sets UpdatedAt itself on create: put the idle time back.
			if err := db.Gorm.Model(&op).UpdateColumn("updated_at", now.Add(-o.idle)).Error; err != nil {
				t.Fatal(err)
			}
		}
		store := &wxops.Store{DB: db.Gorm}
		due, err := store.Pending(ctx, "test_kind", now, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, op := range due {
			names = append(names, op.Target)
		}
		if want := []string{"crashed", "failed-thrice-long-ago"}; !slices.Equal(names, want) {
			t.Fatalf("due %v, want %v", names, want)
		}
		all, err := store.Pending(ctx, "test_kind", now, 0)
		if err != nil || len(all) != 5 {
			t.Fatalf("at a restart %d due (%v), want every pending one", len(all), err)
		}
	})
}

// Resume hands each due operation to its Call once: claiming marks it
// touched, so a second run at the same moment (another instance, say)
// finds nothing to resend.
func TestResumeClaims(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		for i := range 2 {
			op := models.WxOperation{Kind: "test_kind", RequestNo: fmt.Sprintf("REQ%02d", i), Body: "{}", Status: models.OpPending}
			if err := db.Gorm.Create(&op).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Gorm.Model(&op).UpdateColumn("updated_at", now.Add(-5*time.Minute)).Error; err != nil {
				t.Fatal(err)
			}
		}
		store := &wxops.Store{DB: db.Gorm, Now: func() time.Time { return now }}
		var sent []string
		callFor := func(_ context.Context, op *models.WxOperation) (wxops.Call, error) {
			return wxops.Call{Audit: wxops.Audit{Action: "test.act", TargetType: "stock", TargetID: "1"},
				Send: func(context.Context, *models.WxOperation) (*wxops.Done, error) {
					sent = append(sent, op.RequestNo)
					return &wxops.Done{}, nil
				}}, nil
		}
		if done, err := store.Resume(ctx, "test_kind", now, 2*time.Minute, callFor); err != nil || done != 2 {
			t.Fatalf("first run: %d done, %v", done, err)
		}
		if done, err := store.Resume(ctx, "test_kind", now, 2*time.Minute, callFor); err != nil || done != 0 {
			t.Fatalf("second run: %d done, %v", done, err)
		}
		if !slices.Equal(sent, []string{"REQ00", "REQ01"}) {
			t.Fatalf("resent %v", sent)
		}
	})
}
