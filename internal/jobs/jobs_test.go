package jobs_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"voucherconsole/internal/database"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

type pingArgs struct {
	N int `json:"n"`
}

func (pingArgs) Kind() string { return "test.ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	sum *atomic.Int64
}

func (w *pingWorker) Work(ctx context.Context, job *river.Job[pingArgs]) error {
	w.sum.Add(int64(job.Args.N))
	return nil
}

// A job enqueued in a transaction exists only if the transaction commits, on
// both databases, and is then worked; migrating twice is harmless.
func TestTransactionalInsert(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		for range 2 {
			if err := jobs.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
		}
		var sum atomic.Int64
		workers := river.NewWorkers()
		river.AddWorker(workers, &pingWorker{sum: &sum})
		e, err := jobs.New(db, jobs.Config{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Gorm.Exec("CREATE TABLE marks (n INTEGER)").Error; err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		var rolledBack int64
		err = e.Transaction(ctx, func(tx *gorm.DB, enqueue jobs.Enqueue) error {
			if err := tx.Exec("INSERT INTO marks (n) VALUES (1)").Error; err != nil {
				return err
			}
			id, err := enqueue(pingArgs{N: 100}, nil)
			rolledBack = id
			if err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("rolled-back transaction: %v", err)
		}
		if st, err := e.JobState(ctx, rolledBack); err != nil || st != "" {
			t.Fatalf("job of a rolled-back transaction: state %q, %v", st, err)
		}
		var committed int64
		err = e.Transaction(ctx, func(tx *gorm.DB, enqueue jobs.Enqueue) error {
			if err := tx.Exec("INSERT INTO marks (n) VALUES (2)").Error; err != nil {
				return err
			}
			// A nested gorm transaction (a savepoint) and a second job.
			if err := tx.Transaction(func(tx2 *gorm.DB) error { return tx2.Exec("INSERT INTO marks (n) VALUES (3)").Error }); err != nil {
				return err
			}
			if _, err := enqueue(pingArgs{N: 1}, nil); err != nil {
				return err
			}
			committed, err = enqueue(pingArgs{N: 2}, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var marks int64
		db.Gorm.Raw("SELECT COALESCE(SUM(n), 0) FROM marks").Scan(&marks)
		if marks != 5 {
			t.Fatalf("marks sum %d, want 5 (rolled-back row absent)", marks)
		}
		if st, err := e.JobState(ctx, committed); err != nil || st != rivertype.JobStateAvailable {
			t.Fatalf("committed job: state %q, %v", st, err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := e.Stop(sctx); err != nil {
				t.Error(err)
			}
		}()
		deadline := time.Now().Add(15 * time.Second)
		for sum.Load() != 3 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if sum.Load() != 3 {
			t.Fatalf("worked sum %d, want 3 (only the committed jobs)", sum.Load())
		}
	})
}
