// Package uploads is the pipeline that takes a CSV file of coupon codes to a
// WeChat Pay stock (SPEC §5): the file is kept and checked (a dry run that
// stores the rows that will not be sent and fixes the batches, each with its
// request number), then, once started, sent by a durable background job on
// River, batch after batch, at a rate shared by every console instance on
// the database, ending in a report that reconciles.
//
// Exactly once: a batch's request number and codes are stored before its
// first try and every retry or resume resends exactly them, so WeChat Pay,
// which de-duplicates by request number, never takes a code twice; a batch's
// outcome, the upload's counters and the codes confirmed on the stock commit
// in one transaction, so a crash loses nothing and counts nothing twice.
package uploads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/database"
	"voucherconsole/internal/filestore"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/wxpay"
)

// Actions audited by this package.
const (
	ActionCheck   = "upload.check"
	ActionStart   = "upload.start"
	ActionAbandon = "upload.abandon"
	ActionCancel  = "upload.cancel"
	ActionResume  = "upload.resume"
	ActionFinish  = "upload.finish"
	ActionFail    = "upload.fail"
)

// Errors; handlers map them to messages in the user's language.
var (
	ErrNotFound      = errors.New("upload not found")
	ErrWrongState    = errors.New("upload is not in a state that allows this")
	ErrCannotUpload  = errors.New("codes cannot be uploaded to this stock")
	ErrEmptyFile     = errors.New("the file is empty")
	ErrNoRows        = errors.New("the file has no codes")
	ErrNothingToSend = errors.New("the upload has nothing left to send")
	// ErrFileGone: the upload's file is not readable from this instance.
	ErrFileGone = errors.New("the upload's file is kept elsewhere")
)

// TooLargeError means the file is larger than the configured limit.
type TooLargeError struct{ Max int64 }

func (e *TooLargeError) Error() string { return fmt.Sprintf("the file is larger than %d bytes", e.Max) }

// Uploader is the part of the WeChat Pay client that uploads codes.
type Uploader interface {
	UploadProductCouponCodes(ctx context.Context, productCouponID, stockID string, req wxpay.UploadProductCouponCodesRequest) (*wxpay.UploadProductCouponCodesReply, error)
	UploadBusifavorCodes(ctx context.Context, stockID string, req wxpay.UploadBusifavorCodesRequest) (*wxpay.UploadBusifavorCodesReply, error)
}

// Queue is the job engine (jobs.Engine).
type Queue interface {
	Transaction(ctx context.Context, fn func(tx *gorm.DB, enqueue jobs.Enqueue) error) error
	JobState(ctx context.Context, id int64) (rivertype.JobState, error)
	ID() string
}

// Options tune the sender; zero values get the defaults.
type Options struct {
	// Concurrency is the number of batches of one upload in flight at once
	// (the shared rate limit decides the pace; this hides each batch's
	// round trip and commit, so that no slot of the limit goes unused).
	// A cancel stops after these.
	Concurrency int
	// Slice is how long one job execution sends before it hands over
	// (snoozes, to be picked up again at once by any instance). It must be
	// well below the job engine's JobTimeout.
	Slice time.Duration
	// LeaseTTL is how long an upload stays claimed by a job execution
	// without a heartbeat; Heartbeat is how often the claim is renewed.
	LeaseTTL  time.Duration
	Heartbeat time.Duration
	// MaxBatchTries is how many job attempts (each with the client's own
	// retries) a batch gets against retryable errors before the upload is
	// marked failed, to be resumed.
	MaxBatchTries int
	// SweepEvery is how often an instance looks for active uploads whose
	// job died with its process.
	SweepEvery time.Duration
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Slice <= 0 {
		o.Slice = 15 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.MaxBatchTries <= 0 {
		o.MaxBatchTries = 10
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 5 * time.Second
	}
	return o
}

// Service runs uploads.
type Service struct {
	DB *database.DB
	// Jobs is the job engine; it is set after construction (the engine's
	// workers need the service).
	Jobs Queue
	WX   Uploader
	// Stocks refreshes a stock's code counts after an upload.
	Stocks *stocks.Service
	// Files keeps the uploaded files; nil keeps them in DataDir, on this
	// instance only.
	Files   filestore.Store
	DataDir string
	Logger  *slog.Logger
	Now     clock.Func
	Options Options

	draining atomic.Bool
}

// Drain makes running job executions end their slice now (their jobs
// snooze and carry on elsewhere or after a restart); call it before
// stopping the job engine.
func (s *Service) Drain() { s.draining.Store(true) }

func (s *Service) opts() Options { return s.Options.withDefaults() }

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// systemActor is who the background job acts as in the audit log.
func systemActor(id int64) audit.Context {
	return audit.Context{Actor: fmt.Sprintf("console (upload %d)", id)}
}

// QueueName is the River queue uploads are sent on.
const QueueName = "uploads"

// SendArgs is the River job that sends an upload's pending batches.
type SendArgs struct {
	UploadID int64 `json:"upload_id"`
}

// Kind is the job kind.
func (SendArgs) Kind() string { return "upload.send" }

// InsertOpts: the uploads queue; attempts are bounded per batch by the
// worker (Options.MaxBatchTries), not by the job's attempt count, which
// grows with every retryable failure over an upload's whole life.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: 10_000}
}

// Get loads an upload.
// now is the current time at the precision both databases store.
func (s *Service) now() time.Time { return s.Now.UTC().Truncate(time.Microsecond) }

func (s *Service) Get(ctx context.Context, id int64) (*Upload, error) {
	var u Upload
	err := s.DB.Gorm.WithContext(ctx).Take(&u, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// ListForStock returns a stock's uploads, newest first.
func (s *Service) ListForStock(ctx context.Context, stockRef int64, limit int) ([]Upload, error) {
	var out []Upload
	err := s.DB.Gorm.WithContext(ctx).Where("stock_ref = ? AND status <> ?", stockRef, StatusChecking).
		Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

func countsDetail(u *Upload) map[string]any {
	return map[string]any{
		"file_name": u.FileName, "file_sha256": u.FileSHA256, "encoding": u.Encoding,
		"rows_read": u.RowsRead, "valid": u.ValidCount, "invalid": u.InvalidCount, "duplicate": u.DuplicateCount,
		"already_uploaded": u.KnownCount, "to_send": u.CodesTotal, "batches": u.BatchesTotal,
		"uploaded": u.CodesUploaded, "already_on_wechat": u.AlreadyOnWeChat(), "failed": u.CodesFailed,
		"not_sent": u.NotSent(), "stock_ref": u.StockRef,
	}
}

func uploadTarget(id int64) string { return fmt.Sprint(id) }

// Start queues a checked upload for sending: its status and its job commit
// together. An upload with nothing to send finishes at once.
func (s *Service) Start(ctx context.Context, ac audit.Context, id int64) error {
	return s.Jobs.Transaction(ctx, func(tx *gorm.DB, enqueue jobs.Enqueue) error {
		return s.StartTx(ctx, tx, enqueue, ac, id)
	})
}

// StartTx is Start inside the caller's job-engine transaction, so that
// another change (an approval's decision) and the start commit together.
func (s *Service) StartTx(ctx context.Context, tx *gorm.DB, enqueue jobs.Enqueue, ac audit.Context, id int64) error {
	now := s.now()
	{
		res := tx.Model(&Upload{}).Where("id = ? AND status = ?", id, StatusChecked).
			Updates(map[string]any{"status": StatusQueued, "started_at": now, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrWrongState
		}
		var u Upload
		if err := tx.Take(&u, id).Error; err != nil {
			return err
		}
		rec := ac.Record(ActionStart, audit.Success, audit.TargetUpload, uploadTarget(id))
		rec.Detail = countsDetail(&u)
		if _, err := audit.Append(ctx, tx, now, rec); err != nil {
			return err
		}
		if u.BatchesTotal == 0 {
			return s.finishTx(ctx, tx, &u, now)
		}
		jobID, err := enqueue(SendArgs{UploadID: id}, nil)
		if err != nil {
			return err
		}
		return tx.Model(&Upload{}).Where("id = ?", id).Update("job_id", jobID).Error
	}
}

// Abandon drops a checked upload that was never started.
func (s *Service) Abandon(ctx context.Context, ac audit.Context, id int64) error {
	now := s.now()
	return s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Upload{}).Where("id = ? AND status = ?", id, StatusChecked).
			Updates(map[string]any{"status": StatusAbandoned, "finished_at": now, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrWrongState
		}
		// Its batches were never sent; their request numbers die with them.
		if err := tx.Where("upload_id = ?", id).Delete(&Batch{}).Error; err != nil {
			return err
		}
		var u Upload
		if err := tx.Take(&u, id).Error; err != nil {
			return err
		}
		rec := ac.Record(ActionAbandon, audit.Success, audit.TargetUpload, uploadTarget(id))
		rec.Detail = countsDetail(&u)
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
}

// Cancel stops an active upload after the batches in flight. It returns
// true when the upload stopped at once (no job execution was sending it);
// otherwise the sending job stops it and records the end.
func (s *Service) Cancel(ctx context.Context, ac audit.Context, id int64) (stopped bool, err error) {
	now := s.now()
	err = s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		nowExpr, nowArgs := s.nowMicros()
		res := tx.Exec("UPDATE uploads SET status = ?, cancel_requested = ?, finished_at = ?, updated_at = ? "+
			"WHERE id = ? AND status IN (?, ?) AND (lease_owner IS NULL OR lease_until < "+nowExpr+")",
			append([]any{StatusCancelled, false, now, now, id, StatusQueued, StatusSending}, nowArgs...)...)
		if res.Error != nil {
			return res.Error
		}
		outcome := audit.Pending
		if res.RowsAffected == 1 {
			stopped, outcome = true, audit.Success
		} else {
			res = tx.Model(&Upload{}).Where("id = ? AND status IN ?", id, []Status{StatusQueued, StatusSending}).
				Updates(map[string]any{"cancel_requested": true, "updated_at": now})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return ErrWrongState
			}
		}
		var u Upload
		if err := tx.Take(&u, id).Error; err != nil {
			return err
		}
		rec := ac.Record(ActionCancel, outcome, audit.TargetUpload, uploadTarget(id))
		rec.Detail = countsDetail(&u)
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
	return stopped, err
}

// CanResume reports whether an upload can be resumed: failed or cancelled,
// or finished with batches WeChat Pay refused (resent with their own request
// numbers).
func CanResume(u *Upload) bool {
	return u.Status == StatusFailed || u.Status == StatusCancelled || (u.Status == StatusFinished && u.BatchesFailed > 0)
}

// Resume queues an upload again: its failed batches become pending (with
// their request numbers unchanged) and a new job sends every pending batch.
func (s *Service) Resume(ctx context.Context, ac audit.Context, id int64) error {
	now := s.now()
	return s.Jobs.Transaction(ctx, func(tx *gorm.DB, enqueue jobs.Enqueue) error {
		// Claim the upload first: a second resume racing this one finds it
		// queued and stops here.
		res := tx.Exec("UPDATE uploads SET status = ?, cancel_requested = ?, error_code = '', error_message = '', "+
			"finished_at = NULL, lease_owner = NULL, updated_at = ? "+
			"WHERE id = ? AND (status IN (?, ?) OR (status = ? AND batches_failed > 0))",
			StatusQueued, false, now, id, StatusFailed, StatusCancelled, StatusFinished)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrWrongState
		}
		var reset struct{ N, Codes int64 }
		if err := tx.Model(&Batch{}).Select("COUNT(*) AS n, COALESCE(SUM(code_count), 0) AS codes").
			Where("upload_id = ? AND status = ?", id, BatchFailed).Scan(&reset).Error; err != nil {
			return err
		}
		if reset.N > 0 {
			if err := tx.Model(&Batch{}).Where("upload_id = ? AND status = ?", id, BatchFailed).
				Updates(map[string]any{"status": BatchPending, "attempts": 0, "http_status": 0, "error_code": "",
					"error_message": "", "wx_request_id": "", "done_at": nil, "updated_at": now}).Error; err != nil {
				return err
			}
			if err := tx.Exec("UPDATE uploads SET codes_failed = codes_failed - ?, batches_failed = batches_failed - ? WHERE id = ?",
				reset.Codes, reset.N, id).Error; err != nil {
				return err
			}
		}
		var pending int64
		if err := tx.Model(&Batch{}).Where("upload_id = ? AND status = ?", id, BatchPending).Count(&pending).Error; err != nil {
			return err
		}
		if pending == 0 {
			return ErrNothingToSend
		}
		var u Upload
		if err := tx.Take(&u, id).Error; err != nil {
			return err
		}
		rec := ac.Record(ActionResume, audit.Success, audit.TargetUpload, uploadTarget(id))
		rec.Detail = countsDetail(&u)
		rec.Detail["batches_retried"] = reset.N
		rec.Detail["batches_pending"] = pending
		if _, err := audit.Append(ctx, tx, now, rec); err != nil {
			return err
		}
		jobID, err := enqueue(SendArgs{UploadID: id}, nil)
		if err != nil {
			return err
		}
		return tx.Model(&Upload{}).Where("id = ?", id).Update("job_id", jobID).Error
	})
}

// finishTx records the end of an upload whose batches all have an outcome.
func (s *Service) finishTx(ctx context.Context, tx *gorm.DB, u *Upload, now time.Time) error {
	if err := tx.Model(&Upload{}).Where("id = ?", u.ID).Updates(map[string]any{
		"status": StatusFinished, "finished_at": now, "updated_at": now, "lease_owner": nil, "cancel_requested": false,
	}).Error; err != nil {
		return err
	}
	u.Status = StatusFinished
	outcome := audit.Success
	if u.CodesFailed > 0 {
		outcome = audit.Failure
	}
	rec := systemActor(u.ID).Record(ActionFinish, outcome, audit.TargetUpload, uploadTarget(u.ID))
	rec.Detail = countsDetail(u)
	_, err := audit.Append(ctx, tx, now, rec)
	return err
}

// nowMicros is an SQL expression for the database's clock in Unix
// microseconds, with its arguments: PostgreSQL's own clock, shared by every
// instance; the embedded database is one machine's, so the process clock.
func (s *Service) nowMicros() (string, []any) {
	if s.DB.Dialect == database.Postgres {
		return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)", nil
	}
	return "?", []any{time.Now().UnixMicro()}
}

// stockOf loads the upload's stock.
func (s *Service) stockOf(ctx context.Context, u *Upload) (*models.Stock, error) {
	var st models.Stock
	if err := s.DB.Gorm.WithContext(ctx).Take(&st, u.StockRef).Error; err != nil {
		return nil, fmt.Errorf("stock %d of upload %d: %w", u.StockRef, u.ID, err)
	}
	return &st, nil
}
