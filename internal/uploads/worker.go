package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay"
)

// Worker is the River worker of SendArgs. One job execution sends for at
// most Options.Slice, then snoozes so that the job (possibly on another
// instance) carries on at once: no execution outlives River's job timeout,
// and River's rescue of the jobs of a killed process stays short.
//
// An execution first claims the upload (a lease renewed by a heartbeat), so
// at most one execution sends an upload's batches at any time whatever
// River does; a second execution of the same upload (a rescued job, a job
// enqueued by the sweep) finds the claim and ends.
type Worker struct {
	river.WorkerDefaults[SendArgs]
	Service *Service
}

// NextRetry spaces retries after retryable failures: 1 s, 2 s, 4 s, 8 s,
// then 15 s, with jitter. The job's attempt count grows over the whole
// upload, so it is capped low; Options.MaxBatchTries bounds the tries.
func (w *Worker) NextRetry(job *river.Job[SendArgs]) time.Time {
	return time.Now().Add(retryDelay(job.Attempt))
}

func retryDelay(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 4)
	d = min(d, 15*time.Second)
	return d*4/5 + time.Duration(mrand.Int64N(int64(d)*2/5+1))
}

// Work sends the upload's pending batches for one slice.
func (w *Worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	return w.Service.work(ctx, job.Args.UploadID)
}

var errLeaseLost = errors.New("upload lease lost")

type outcomeKind int

const (
	outSlice       outcomeKind = iota // time is up; continue in a new execution
	outDone                           // no pending batch left
	outCancelled                      // cancel requested
	outRetry                          // a batch failed with a retryable error
	outFatal                          // an error no retry will fix (configuration)
	outInterrupted                    // context ended or claim lost; nothing recorded
)

type outcome struct {
	kind  outcomeKind
	err   error
	tries int
	batch *Batch
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Service) work(ctx context.Context, id int64) error {
	u, err := s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !u.Status.Active() {
		return nil
	}
	o := s.opts()
	l := &lease{s: s, id: id, owner: s.Jobs.ID() + "#" + randomHex(4), ttl: o.LeaseTTL}
	ok, err := l.acquire(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return nil // another execution is sending it and carries on
	}
	bg, cancelBg := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelBg()
	if _, err := l.renew(ctx); err != nil {
		l.release(bg)
		return err
	}
	sliceCtx, cancel := context.WithCancelCause(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		l.keep(sliceCtx, cancel, o.Heartbeat)
	}()
	out := s.sendSlice(sliceCtx, u, l)
	cancel(nil)
	<-hbDone

	switch out.kind {
	case outDone:
		done, err := s.finish(bg, id, l.owner)
		if err != nil {
			l.release(bg)
			return err
		}
		if done != nil {
			s.analyzeCodes(bg)
			s.refreshStock(bg, done)
		}
		return nil
	case outCancelled:
		return s.stopCancelled(bg, id, l.owner)
	case outSlice:
		l.release(bg)
		return river.JobSnooze(0)
	case outRetry:
		if out.tries >= o.MaxBatchTries {
			return s.fail(bg, id, l.owner, out.err, out.batch)
		}
		l.release(bg)
		return out.err
	case outFatal:
		return s.fail(bg, id, l.owner, out.err, out.batch)
	default:
		l.release(bg)
		if out.err == nil {
			out.err = errLeaseLost
		}
		return out.err
	}
}

// lease is an execution's claim on an upload.
type lease struct {
	s     *Service
	id    int64
	owner string
	ttl   time.Duration

	mu      sync.Mutex
	renewed time.Time // when the last successful renewal was sent
	cancel  atomic.Bool
}

func (l *lease) acquire(ctx context.Context) (bool, error) {
	now := l.s.now()
	nowExpr, nowArgs := l.s.nowMicros()
	args := []any{l.owner}
	args = append(args, nowArgs...)
	args = append(args, l.ttl.Microseconds(), StatusSending, now, l.id, StatusQueued, StatusSending)
	args = append(args, nowArgs...)
	sent := time.Now()
	res := l.s.DB.Gorm.WithContext(ctx).Exec("UPDATE uploads SET lease_owner = ?, lease_until = "+nowExpr+" + ?, status = ?, updated_at = ? "+
		"WHERE id = ? AND status IN (?, ?) AND (lease_owner IS NULL OR lease_until < "+nowExpr+")", args...)
	if res.Error != nil {
		return false, fmt.Errorf("claim upload %d: %w", l.id, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	l.mu.Lock()
	l.renewed = sent
	l.mu.Unlock()
	return true, nil
}

// renew extends the claim and reads whether a cancel was requested. It
// reports false when the claim is no longer this execution's.
func (l *lease) renew(ctx context.Context) (bool, error) {
	nowExpr, nowArgs := l.s.nowMicros()
	args := append(nowArgs, l.ttl.Microseconds(), l.id, l.owner)
	sent := time.Now()
	var rows []struct{ CancelRequested bool }
	err := l.s.DB.Gorm.WithContext(ctx).Raw("UPDATE uploads SET lease_until = "+nowExpr+" + ? "+
		"WHERE id = ? AND lease_owner = ? RETURNING cancel_requested", args...).Scan(&rows).Error
	if err != nil {
		return false, err
	}
	if len(rows) == 0 {
		return false, nil
	}
	l.mu.Lock()
	l.renewed = sent
	l.mu.Unlock()
	l.cancel.Store(rows[0].CancelRequested)
	return true, nil
}

// valid reports whether the claim is surely still this execution's, with a
// margin for the time a request takes.
func (l *lease) valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.renewed) < l.ttl-l.ttl/4
}

// keep renews the claim until ctx ends; losing it cancels the slice.
func (l *lease) keep(ctx context.Context, cancel context.CancelCauseFunc, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := l.renew(ctx)
		if ctx.Err() != nil {
			return
		}
		if (err == nil && !ok) || (err != nil && !l.valid()) {
			cancel(errLeaseLost)
			return
		}
	}
}

func (l *lease) release(ctx context.Context) {
	if err := l.s.DB.Gorm.WithContext(ctx).Exec("UPDATE uploads SET lease_owner = NULL WHERE id = ? AND lease_owner = ?", l.id, l.owner).Error; err != nil {
		l.s.log().Warn("release upload claim", "upload", l.id, "err", err)
	}
}

// sendSlice sends pending batches in batch order, Concurrency at a time,
// until none is left, the slice is over, a cancel is requested, or a batch
// fails in a way that stops the job.
func (s *Service) sendSlice(ctx context.Context, u *Upload, l *lease) outcome {
	o := s.opts()
	st, err := s.stockOf(ctx, u)
	if err != nil {
		return outcome{kind: outInterrupted, err: err}
	}
	deadline := time.Now().Add(o.Slice)

	var (
		mu   sync.Mutex
		stop *outcome
	)
	setStop := func(oc outcome) {
		mu.Lock()
		if stop == nil {
			stop = &oc
		}
		mu.Unlock()
	}
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return stop != nil
	}

	work := make(chan *Batch)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for b := range work {
				// A batch handed over but not started is left pending when
				// the job stops: cancel stops after the batches in flight.
				if stopped() || l.cancel.Load() || ctx.Err() != nil {
					continue
				}
				if !l.valid() {
					setStop(outcome{kind: outInterrupted, err: errLeaseLost})
					continue
				}
				if oc, ok := s.sendBatch(ctx, st, b); !ok {
					setStop(oc)
				}
			}
		})
	}

	reason := outSlice
	lastNo := 0
	var page []*Batch
dispatch:
	for {
		switch {
		case ctx.Err() != nil:
			reason = outInterrupted
			break dispatch
		case l.cancel.Load():
			reason = outCancelled
			break dispatch
		case stopped():
			break dispatch
		case time.Now().After(deadline), s.draining.Load():
			reason = outSlice
			break dispatch
		}
		if len(page) == 0 {
			page, err = s.pendingAfter(ctx, u.ID, lastNo, 4*o.Concurrency)
			if err != nil {
				setStop(outcome{kind: outInterrupted, err: err})
				break dispatch
			}
			if len(page) == 0 {
				reason = outDone
				break dispatch
			}
		}
		b := page[0]
		page = page[1:]
		lastNo = b.BatchNo
		select {
		case work <- b:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()

	if stop != nil {
		return *stop
	}
	switch reason {
	case outInterrupted:
		return outcome{kind: outInterrupted, err: context.Cause(ctx)}
	case outDone:
		// Every batch was handed over; one whose sender saw the claim
		// lapse or a cancel come in is still pending.
		if l.cancel.Load() {
			return outcome{kind: outCancelled}
		}
		if ctx.Err() != nil {
			return outcome{kind: outInterrupted, err: context.Cause(ctx)}
		}
	}
	return outcome{kind: reason}
}

// pendingAfter returns up to n pending batches after batch number after, in
// order.
func (s *Service) pendingAfter(ctx context.Context, uploadID int64, after, n int) ([]*Batch, error) {
	var out []*Batch
	err := s.DB.Gorm.WithContext(ctx).Where("upload_id = ? AND status = ? AND batch_no > ?", uploadID, BatchPending, after).
		Order("batch_no").Limit(n).Find(&out).Error
	return out, err
}

// reply is what the commit needs of either endpoint's reply.
type reply struct {
	exist     []string
	failed    []wxpay.FailedCouponCode
	requestID string
}

// sendBatch sends one batch with its stored request number and codes and
// records the outcome. It reports false, with the outcome, when the job
// must stop.
func (s *Service) sendBatch(ctx context.Context, st *models.Stock, b *Batch) (outcome, bool) {
	var codes []string
	if err := json.Unmarshal([]byte(b.Codes), &codes); err != nil {
		return outcome{kind: outFatal, err: fmt.Errorf("batch %d: stored codes: %w", b.BatchNo, err), batch: b}, false
	}
	var (
		rep reply
		err error
	)
	switch st.Kind {
	case models.KindProductCoupon:
		var r *wxpay.UploadProductCouponCodesReply
		r, err = s.WX.UploadProductCouponCodes(ctx, st.ProductCouponID, st.StockID,
			wxpay.UploadProductCouponCodesRequest{OutRequestNo: b.RequestNo, CodeList: codes})
		if err == nil {
			rep = reply{exist: r.AlreadyExistCodeList, failed: r.FailedCodeList, requestID: r.Meta.RequestID}
		}
	case models.KindBusifavor:
		var r *wxpay.UploadBusifavorCodesReply
		r, err = s.WX.UploadBusifavorCodes(ctx, st.StockID,
			wxpay.UploadBusifavorCodesRequest{CouponCodeList: codes, UploadRequestNo: b.RequestNo})
		if err == nil {
			rep = reply{exist: r.ExistCodes, failed: r.FailCodes, requestID: r.Meta.RequestID}
		}
	default:
		return outcome{kind: outFatal, err: fmt.Errorf("stock kind %q takes no codes", st.Kind), batch: b}, false
	}
	// Outcomes are recorded even if the slice ends meanwhile: the reply is in.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err == nil {
		if err := s.commitSent(bg, st, b, codes, rep); err != nil {
			return outcome{kind: outInterrupted, err: err}, false
		}
		return outcome{}, true
	}
	if ctx.Err() != nil {
		// Stopped mid-call: the outcome is unknown and the batch stays
		// pending, to be resent with the same request number.
		return outcome{kind: outInterrupted, err: context.Cause(ctx)}, false
	}
	var ae *wxpay.APIError
	switch {
	case errors.As(err, &ae) && !ae.Retryable():
		if err := s.commitFailed(bg, b, ae); err != nil {
			return outcome{kind: outInterrupted, err: err}, false
		}
		return outcome{}, true
	case retryable(err):
		tries, rerr := s.recordTry(bg, b, err)
		if rerr != nil {
			return outcome{kind: outInterrupted, err: rerr}, false
		}
		return outcome{kind: outRetry, err: err, tries: tries, batch: b}, false
	default:
		return outcome{kind: outFatal, err: err, batch: b}, false
	}
}

// retryable: what the client calls retryable, and a reply the client
// refused (bad signature, undecodable): WeChat Pay may have taken the batch,
// and resending the same request number returns its outcome.
func retryable(err error) bool {
	var re *wxpay.ReplyError
	return wxpay.IsRetryable(err) || errors.As(err, &re)
}

// describe is what is recorded of an error: its one description
// (wxpay.Describe) — WeChat Pay's code, message and Request-ID, or the
// console's own code; an error's text goes to the log only.
func describe(err error) (status int, code, message, requestID string) {
	if d, ok := wxpay.Describe(err); ok {
		return d.Status, d.Code, d.Message, d.RequestID
	}
	return 0, wxpay.CodeError, "", ""
}

// commitSent records an accepted batch: its outcome, the upload's counters
// and the codes now known on the stock, in one transaction, once.
func (s *Service) commitSent(ctx context.Context, st *models.Stock, b *Batch, codes []string, rep reply) error {
	inBatch := make(map[string]bool, len(codes))
	for _, c := range codes {
		inBatch[c] = true
	}
	failed := map[string]bool{}
	var failedList []FailedCode
	for _, f := range rep.failed {
		if inBatch[f.CouponCode] && !failed[f.CouponCode] {
			failed[f.CouponCode] = true
			failedList = append(failedList, FailedCode{Code: f.CouponCode, Err: f.Code, Message: f.Message})
		}
	}
	exist := map[string]bool{}
	var existList []string
	for _, c := range rep.exist {
		if inBatch[c] && !failed[c] && !exist[c] {
			exist[c] = true
			existList = append(existList, c)
		}
	}
	now := s.now()
	var confirmed []StockCode
	uploaded := 0
	for _, c := range codes {
		if failed[c] {
			continue
		}
		if !exist[c] {
			uploaded++
		}
		confirmed = append(confirmed, StockCode{StockRef: st.ID, Code: c, UploadID: b.UploadID, CreatedAt: now})
	}
	existJSON, failedJSON := "", ""
	if len(existList) > 0 {
		j, _ := json.Marshal(existList)
		existJSON = string(j)
	}
	if len(failedList) > 0 {
		j, _ := json.Marshal(failedList)
		failedJSON = string(j)
	}
	return s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Batch{}).Where("id = ? AND status = ?", b.ID, BatchPending).Updates(map[string]any{
			"status": BatchSent, "attempts": gorm.Expr("attempts + 1"), "uploaded_count": uploaded,
			"exist_codes": existJSON, "failed_codes": failedJSON, "http_status": 200, "error_code": "", "error_message": "",
			"wx_request_id": rep.requestID, "sent_by": s.Jobs.ID(), "done_at": now, "updated_at": now,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil // recorded already (by an execution that resent it)
		}
		if err := tx.Exec("UPDATE uploads SET codes_uploaded = codes_uploaded + ?, codes_exist = codes_exist + ?, "+
			"codes_failed = codes_failed + ?, batches_sent = batches_sent + 1, updated_at = ? WHERE id = ?",
			uploaded, len(existList), len(failedList), now, b.UploadID).Error; err != nil {
			return err
		}
		if len(confirmed) == 0 {
			return nil
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&confirmed).Error
	})
}

// commitFailed records a batch WeChat Pay refused for good.
func (s *Service) commitFailed(ctx context.Context, b *Batch, ae *wxpay.APIError) error {
	now := s.now()
	return s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Batch{}).Where("id = ? AND status = ?", b.ID, BatchPending).Updates(map[string]any{
			"status": BatchFailed, "attempts": gorm.Expr("attempts + 1"), "http_status": ae.StatusCode,
			"error_code": ae.Code, "error_message": ae.Message, "wx_request_id": ae.RequestID,
			"sent_by": s.Jobs.ID(), "done_at": now, "updated_at": now,
		})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		return tx.Exec("UPDATE uploads SET codes_failed = codes_failed + ?, batches_failed = batches_failed + 1, updated_at = ? WHERE id = ?",
			b.CodeCount, now, b.UploadID).Error
	})
}

// recordTry counts a retryable failure on a batch, which stays pending, and
// returns its tries so far.
func (s *Service) recordTry(ctx context.Context, b *Batch, cause error) (int, error) {
	status, code, msg, reqID := describe(cause)
	db := s.DB.Gorm.WithContext(ctx)
	if err := db.Model(&Batch{}).Where("id = ? AND status = ?", b.ID, BatchPending).Updates(map[string]any{
		"attempts": gorm.Expr("attempts + 1"), "http_status": status, "error_code": code,
		"error_message": truncate(msg, 500), "wx_request_id": reqID, "updated_at": s.now(),
	}).Error; err != nil {
		return 0, err
	}
	var fresh Batch
	if err := db.Select("attempts").Take(&fresh, b.ID).Error; err != nil {
		return 0, err
	}
	s.log().Warn("upload batch failed, will retry", "upload", b.UploadID, "batch", b.BatchNo,
		"request_no", b.RequestNo, "tries", fresh.Attempts, "code", code, "err", cause)
	return fresh.Attempts, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// finish ends an upload with no pending batch. It returns the upload when
// this execution recorded the end.
func (s *Service) finish(ctx context.Context, id int64, owner string) (*Upload, error) {
	now := s.now()
	var done *Upload
	err := s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var pending int64
		if err := tx.Model(&Batch{}).Where("upload_id = ? AND status = ?", id, BatchPending).Count(&pending).Error; err != nil {
			return err
		}
		if pending > 0 {
			return fmt.Errorf("upload %d: %d batches still pending at the end", id, pending)
		}
		res := tx.Model(&Upload{}).Where("id = ? AND status = ? AND lease_owner = ?", id, StatusSending, owner).
			Updates(map[string]any{"status": StatusFinished, "finished_at": now, "updated_at": now, "lease_owner": nil})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		var u Upload
		if err := tx.Take(&u, id).Error; err != nil {
			return err
		}
		outcome := audit.Success
		if u.CodesFailed > 0 {
			outcome = audit.Failure
		}
		rec := systemActor(id).Record(ActionFinish, outcome, audit.TargetUpload, uploadTarget(id))
		rec.Detail = countsDetail(&u)
		if _, err := audit.Append(ctx, tx, now, rec); err != nil {
			return err
		}
		done = &u
		return nil
	})
	return done, err
}

// stopCancelled ends an upload whose cancel was requested.
func (s *Service) stopCancelled(ctx context.Context, id int64, owner string) error {
	now := s.now()
	return s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Upload{}).Where("id = ? AND status = ? AND lease_owner = ?", id, StatusSending, owner).
			Updates(map[string]any{"status": StatusCancelled, "cancel_requested": false, "finished_at": now, "updated_at": now, "lease_owner": nil})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		var u Upload
		if err := tx.Take(&u, id).Error; err != nil {
			return err
		}
		rec := systemActor(id).Record(ActionCancel, audit.Success, audit.TargetUpload, uploadTarget(id))
		rec.Detail = countsDetail(&u)
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
}

// fail ends an upload that cannot go on for now; it can be resumed.
func (s *Service) fail(ctx context.Context, id int64, owner string, cause error, b *Batch) error {
	now := s.now()
	_, code, msg, reqID := describe(cause)
	s.log().Error("upload failed", "upload", id, "code", code, "err", cause)
	return s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Upload{}).Where("id = ? AND status = ? AND lease_owner = ?", id, StatusSending, owner).
			Updates(map[string]any{"status": StatusFailed, "error_code": code, "error_message": truncate(msg, 500),
				"finished_at": now, "updated_at": now, "lease_owner": nil})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		var u Upload
		if err := tx.Take(&u, id).Error; err != nil {
			return err
		}
		rec := systemActor(id).Record(ActionFail, audit.Failure, audit.TargetUpload, uploadTarget(id))
		rec.WxErrorCode, rec.WxRequestID = code, reqID
		if b != nil {
			rec.WxRequestNo = b.RequestNo
		}
		rec.Detail = countsDetail(&u)
		rec.Detail["error"] = truncate(msg, 300)
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
}

// refreshStock reads the stock's code counts back from WeChat Pay.
func (s *Service) refreshStock(ctx context.Context, u *Upload) {
	if _, err := s.Stocks.Refresh(ctx, systemActor(u.ID), u.StockRef); err != nil {
		s.log().Warn("refresh stock after upload", "upload", u.ID, "stock", u.StockRef, "err", err)
	}
}
