package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Problem says how an entry breaks the chain.
type Problem string

const (
	ProblemHash     Problem = "hash"     // content does not match its hash: the entry was altered
	ProblemLink     Problem = "link"     // prev_hash is not the predecessor's hash: an entry before it was removed or altered
	ProblemSequence Problem = "sequence" // a sequence number is missing: an entry was removed
	ProblemTail     Problem = "tail"     // entries the chain head counts are gone from the end: they were removed
)

// Result of a chain verification.
type Result struct {
	Intact   bool
	Total    int64     // the last entry when the verification started
	Checked  int64     // entries checked
	LastSeq  int64     // last intact entry
	LastAt   time.Time // its time
	LastHash string    // its hash
	// When not intact: the first entry that breaks the chain.
	BrokenSeq int64
	Problem   Problem
}

func (r Result) String() string {
	if r.Intact {
		if r.Checked == 0 {
			return "audit chain intact: no entries"
		}
		return fmt.Sprintf("audit chain intact up to entry %d at %s (%d entries)", r.LastSeq, r.LastAt.UTC().Format(time.RFC3339), r.Checked)
	}
	return fmt.Sprintf("audit chain broken at entry %d (%s); intact up to entry %d", r.BrokenSeq, r.Problem, r.LastSeq)
}

// verifyBatch is how many entries one read fetches: large enough that the
// round trip is a small part of the walk, small enough that the embedded
// database's single connection is never held for long (other statements
// run between two reads).
const verifyBatch = 5000

// Verify walks the whole chain in sequence order.
func Verify(ctx context.Context, db *gorm.DB) (Result, error) {
	return VerifyStream(ctx, db, nil)
}

// VerifyStream walks the whole chain in sequence order, in batches, so
// memory stays flat however long the log is; progress, when not nil, is
// called after each batch with the result so far. It walks the entries up
// to the last one when it starts (the chain head on PostgreSQL); several
// batches are read and hashed at once, one per core and one ahead, and the
// links between entries are then checked in order.
//
// On PostgreSQL the chain head (audit_head) is read first and the walk must
// reach the entry it records, with the hash it records: entries cut off the
// end of the log are found too, unless the head was rewound as well.
func VerifyStream(ctx context.Context, db *gorm.DB, progress func(Result)) (Result, error) {
	return verifyStream(ctx, db, runtime.GOMAXPROCS(0), progress)
}

// verifyStream is VerifyStream hashing on up to workers goroutines.
func verifyStream(ctx context.Context, db *gorm.DB, workers int, progress func(Result)) (Result, error) {
	res := Result{Intact: true}
	head, err := readHead(ctx, db)
	if err != nil {
		return res, fmt.Errorf("audit verify: %w", err)
	}
	if head != nil {
		res.Total = head.Seq
	} else if res.Total, err = LastSeq(ctx, db); err != nil {
		return res, fmt.Errorf("audit verify: %w", err)
	}

	// Batches are read by sequence range, several at once (each read
	// also hashes its entries), and taken in order: the walk goes as fast as
	// the database serves rows, in memory bounded by the batches in flight.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		entries []Entry
		ok      []bool
		err     error
	}
	inFlight := max(2, 2*workers)
	results := make(chan chan batch, inFlight-1)
	go func() {
		defer close(results)
		for lo := int64(0); lo < res.Total; lo += verifyBatch {
			ch := make(chan batch, 1)
			select {
			case results <- ch:
			case <-ctx.Done():
				return
			}
			go func() {
				entries, err := readEntries(ctx, db, lo, lo+verifyBatch)
				var ok []bool
				if err == nil {
					ok = hashesMatch(entries, max(1, workers/inFlight))
				}
				ch <- batch{entries, ok, err}
			}()
		}
	}()

	prevHash := GenesisHash
	var after int64
	for ch := range results {
		var b batch
		select {
		case b = <-ch:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if b.err != nil {
			return res, fmt.Errorf("audit verify: %w", b.err)
		}
		ok := b.ok
		for i := range b.entries {
			e := &b.entries[i]
			switch {
			case e.Seq != after+1:
				res.Problem, res.BrokenSeq = ProblemSequence, after+1
			case e.PrevHash != prevHash:
				res.Problem, res.BrokenSeq = ProblemLink, e.Seq
			case !ok[i], head != nil && e.Seq == head.Seq && e.Hash != head.Hash:
				res.Problem, res.BrokenSeq = ProblemHash, e.Seq
			}
			if res.Problem != "" {
				res.Intact = false
				return res, nil
			}
			res.Checked++
			res.LastSeq, res.LastAt, res.LastHash = e.Seq, e.OccurredAt, e.Hash
			prevHash, after = e.Hash, e.Seq
		}
		if progress != nil {
			progress(res)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if head != nil && res.LastSeq < head.Seq {
		res.Intact, res.Problem, res.BrokenSeq = false, ProblemTail, res.LastSeq+1
	}
	return res, nil
}

// readEntries reads the entries with lo < seq <= hi, scanning the columns
// directly (the walk's cost is mostly this and the hashing).
func readEntries(ctx context.Context, db *gorm.DB, lo, hi int64) ([]Entry, error) {
	rows, err := db.WithContext(ctx).Raw(`SELECT seq, hash_scheme, occurred_at, actor_id, actor, actor_roles, action,
		target_type, target_id, outcome, wx_request_no, wx_error_code, wx_request_id, client_ip, user_agent,
		request_id, detail, prev_hash, hash FROM audit_entries WHERE seq > ? AND seq <= ? ORDER BY seq`, lo, hi).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Entry, 0, hi-lo)
	for rows.Next() {
		var e Entry
		var actorID sql.NullInt64
		if err := rows.Scan(&e.Seq, &e.HashScheme, &e.OccurredAt, &actorID, &e.Actor, &e.ActorRoles, &e.Action,
			&e.TargetType, &e.TargetID, &e.Outcome, &e.WxRequestNo, &e.WxErrorCode, &e.WxRequestID, &e.ClientIP, &e.UserAgent,
			&e.RequestID, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		if actorID.Valid {
			e.ActorID = &actorID.Int64
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// hashesMatch reports for each entry whether its hash is the hash of its
// content chained to its recorded predecessor hash; each entry is checked
// on its own, so the batch is split across the cores.
func hashesMatch(entries []Entry, workers int) []bool {
	ok := make([]bool, len(entries))
	workers = max(1, min(workers, len(entries)/256))
	per := (len(entries) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(entries))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				ok[i] = ComputeHash(&entries[i]) == entries[i].Hash
			}
		})
	}
	wg.Wait()
	return ok
}

// chainHead is PostgreSQL's audit_head row.
type chainHead struct {
	Seq  int64
	Hash string
}

// readHead reads the chain head; nil on SQLite, which has none.
func readHead(ctx context.Context, db *gorm.DB) (*chainHead, error) {
	if db.Dialector.Name() != "postgres" {
		return nil, nil
	}
	var h chainHead
	if err := db.WithContext(ctx).Raw("SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&h).Error; err != nil {
		return nil, err
	}
	return &h, nil
}

// Run states of a background verification.
const (
	RunRunning = "running"
	RunIntact  = "intact"
	RunBroken  = "broken"
	RunFailed  = "failed"
	// RunInterrupted is shown for a run whose instance stopped beating (it
	// is stored as running).
	RunInterrupted = "interrupted"
)

// Run is one background verification, as recorded in audit_verifications.
type Run struct {
	ID          int64 `gorm:"primaryKey"`
	Status      string
	Owner       string
	StartedBy   string
	StartedAt   time.Time
	HeartbeatAt time.Time
	FinishedAt  *time.Time
	Total       int64
	Checked     int64
	LastSeq     int64
	LastAt      *time.Time
	LastHash    string
	BrokenSeq   int64
	Problem     Problem
}

// TableName is the verifications table.
func (Run) TableName() string { return "audit_verifications" }

// Rate is the entries verified per second so far.
func (r *Run) Rate(now time.Time) float64 {
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	if s := end.Sub(r.StartedAt).Seconds(); s > 0 {
		return float64(r.Checked) / s
	}
	return 0
}

// Verifier runs verifications in the background, one at a time across
// every instance sharing the database, and records their progress there.
type Verifier struct {
	DB *gorm.DB
	// Owner names this instance in the runs it walks.
	Owner string
	// Beat is how often a run records its progress (and shows it is alive);
	// zero means half a second. A running run silent for ten beats (and at
	// least ten seconds) is taken for interrupted.
	Beat time.Duration
	Now  func() time.Time
	// Workers is how many cores a run hashes on; zero means one, leaving
	// the others to the pages (console audit verify uses them all).
	Workers int
	// Log receives errors of background runs; may be nil.
	Log func(msg string, args ...any)

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (v *Verifier) init() {
	v.once.Do(func() { v.ctx, v.cancel = context.WithCancel(context.Background()) })
}

func (v *Verifier) beat() time.Duration {
	if v.Beat > 0 {
		return v.Beat
	}
	return 500 * time.Millisecond
}

func (v *Verifier) stale() time.Duration { return max(10*v.beat(), 10*time.Second) }

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Close stops this instance's running verification (recorded as failed)
// and waits for it.
func (v *Verifier) Close() {
	v.init()
	v.cancel()
	v.wg.Wait()
}

// Latest returns the newest run, nil if none ever ran.
func (v *Verifier) Latest(ctx context.Context) (*Run, error) {
	var runs []Run
	if err := v.DB.WithContext(ctx).Order("id DESC").Limit(1).Find(&runs).Error; err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, nil
	}
	r := &runs[0]
	if r.Status == RunRunning && v.now().Sub(r.HeartbeatAt) > v.stale() {
		r.Status = RunInterrupted
	}
	return r, nil
}

// Start starts a verification on this instance unless one is running
// (anywhere); it returns the running one either way.
func (v *Verifier) Start(ctx context.Context, startedBy string) (*Run, error) {
	v.init()
	if r, err := v.Latest(ctx); err != nil || (r != nil && r.Status == RunRunning) {
		return r, err
	}
	now := v.now()
	r := &Run{Status: RunRunning, Owner: v.Owner, StartedBy: truncate(startedBy, 100), StartedAt: now, HeartbeatAt: now}
	if err := v.DB.WithContext(ctx).Create(r).Error; err != nil {
		return nil, err
	}
	v.wg.Go(func() { v.run(r) })
	return r, nil
}

// errRunTaken means another instance took the run over (ours was found
// silent and a new one started): stop quietly.
var errRunTaken = errors.New("verification superseded")

func (v *Verifier) run(r *Run) {
	ctx, cancel := context.WithCancelCause(v.ctx)
	defer cancel(nil)
	last := time.Now()
	record := func(res Result, final bool) error {
		now := v.now()
		up := map[string]any{"heartbeat_at": now, "total": res.Total, "checked": res.Checked, "last_seq": res.LastSeq,
			"last_hash": res.LastHash}
		if res.LastSeq > 0 {
			up["last_at"] = res.LastAt
		}
		if final {
			up["finished_at"] = now
			up["status"] = RunIntact
			if !res.Intact {
				up["status"], up["broken_seq"], up["problem"] = RunBroken, res.BrokenSeq, string(res.Problem)
			}
		}
		db := v.DB.WithContext(context.WithoutCancel(ctx))
		q := db.Model(&Run{}).Where("id = ? AND status = ?", r.ID, RunRunning).Updates(up)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 {
			return errRunTaken
		}
		return nil
	}
	res, err := verifyStream(ctx, v.DB, max(1, v.Workers), func(res Result) {
		if time.Since(last) < v.beat() {
			return
		}
		last = time.Now()
		if err := record(res, false); err != nil {
			cancel(err)
		}
	})
	if err == nil {
		err = record(res, true)
	}
	if err == nil || errors.Is(context.Cause(ctx), errRunTaken) {
		return
	}
	if v.Log != nil {
		v.Log("audit verification failed", "run", r.ID, "err", err)
	}
	now := v.now()
	v.DB.WithContext(context.Background()).Model(&Run{}).Where("id = ? AND status = ?", r.ID, RunRunning).
		Updates(map[string]any{"status": RunFailed, "finished_at": now, "heartbeat_at": now})
}
