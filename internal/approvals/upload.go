package approvals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/models"
	"voucherconsole/internal/uploads"
)

// KindUpload is a checked code file waiting for a second person before it
// is sent.
const KindUpload = "upload"

// ErrUploadChanged: the upload was abandoned, started or its batches
// changed after the approval was asked for; nothing is sent.
var ErrUploadChanged = errors.New("approvals: the upload changed after approval was requested")

// UploadStarter starts checked uploads (uploads.Service) inside a
// job-engine transaction, so that the decision and the start commit
// together: two approvers make one start, and a crash leaves neither or
// both.
type UploadStarter interface {
	Get(ctx context.Context, id int64) (*uploads.Upload, error)
	StartTx(ctx context.Context, tx *gorm.DB, enqueue jobs.Enqueue, ac audit.Context, id int64) error
}

// JobTx runs fn in one transaction with the job engine (jobs.Engine).
type JobTx interface {
	Transaction(ctx context.Context, fn func(tx *gorm.DB, enqueue jobs.Enqueue) error) error
}

// approveUpload approves an upload's request and starts the upload in the
// same transaction.
func (s *Service) approveUpload(ctx context.Context, ac audit.Context, u *models.User, id int64) (*Request, error) {
	if s.Uploads == nil || s.Jobs == nil {
		return nil, fmt.Errorf("approvals: kind %q cannot be sent", KindUpload)
	}
	var enqueue jobs.Enqueue
	run := func(ctx context.Context, fn func(tx *gorm.DB) error) error {
		return s.Jobs.Transaction(ctx, func(tx *gorm.DB, e jobs.Enqueue) error {
			enqueue = e
			return fn(tx)
		})
	}
	r, err := s.decideIn(ctx, run, ac, u, id, StatusApproved, ActionApprove, nil, func(tx *gorm.DB, r *Request) error {
		if err := s.notifyRequester(ctx, tx, r, "approved", s.Now.UTC()); err != nil {
			return err
		}
		return s.startApprovedUpload(ctx, tx, enqueue, ac, r)
	})
	if errors.Is(err, ErrUploadChanged) {
		return s.failUpload(ctx, ac, decider{u.ID}, id)
	}
	return r, err
}

// UploadCall is what an upload's approval shows and binds: the counts and
// the batches' request numbers, with a digest of every batch's number,
// request number and codes as fixed by the dry run.
type UploadCall struct {
	UploadID       int64  `json:"upload_id"`
	StockID        string `json:"stock_id"`
	FileName       string `json:"file_name"`
	RowsRead       int64  `json:"rows_read"`
	CodesToSend    int64  `json:"codes_to_send"`
	Invalid        int64  `json:"invalid"`
	Duplicate      int64  `json:"duplicate"`
	Known          int64  `json:"already_uploaded"`
	Batches        int64  `json:"batches"`
	FirstRequestNo string `json:"first_request_no"`
	LastRequestNo  string `json:"last_request_no"`
	BatchesSHA256  string `json:"batches_sha256"`
}

// batchDigest hashes the upload's batches in order.
func batchDigest(tx *gorm.DB, uploadID int64) (digest, first, last string, n int64, err error) {
	var rows []uploads.Batch
	if err = tx.Select("batch_no", "request_no", "codes").Where("upload_id = ?", uploadID).Order("batch_no").Find(&rows).Error; err != nil {
		return
	}
	h := sha256.New()
	for _, b := range rows {
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00", b.BatchNo, b.RequestNo, b.Codes)
	}
	if len(rows) > 0 {
		first, last = rows[0].RequestNo, rows[len(rows)-1].RequestNo
	}
	return hex.EncodeToString(h.Sum(nil)), first, last, int64(len(rows)), nil
}

func uploadFormToken(id int64) string { return "upload-" + strconv.FormatInt(id, 10) }

// RequestUpload records a request to start the checked upload u (of stock
// stockID): its batches, fixed by the dry run, are bound by their digest.
// Asking twice for one upload is one request; existing says so.
func (s *Service) RequestUpload(ctx context.Context, ac audit.Context, u *uploads.Upload, stockID string) (*Request, bool, error) {
	if u.Status != uploads.StatusChecked {
		return nil, false, uploads.ErrWrongState
	}
	digest, first, last, n, err := batchDigest(s.DB.WithContext(ctx), u.ID)
	if err != nil {
		return nil, false, err
	}
	call := UploadCall{UploadID: u.ID, StockID: stockID, FileName: u.FileName, RowsRead: u.RowsRead, CodesToSend: u.CodesTotal,
		Invalid: u.InvalidCount, Duplicate: u.DuplicateCount, Known: u.KnownCount, Batches: n,
		FirstRequestNo: first, LastRequestNo: last, BatchesSHA256: digest}
	raw, err := json.Marshal(call)
	if err != nil {
		return nil, false, err
	}
	ref := u.StockRef
	now := s.Now.UTC()
	return s.recordRequest(ctx, ac, &Request{
		Kind: KindUpload, StockRef: &ref, RequestNo: first, Method: "START", Path: "/uploads/" + strconv.FormatInt(u.ID, 10), Body: string(raw),
	}, uploadFormToken(u.ID), map[string]any{"upload_id": u.ID, "file_name": u.FileName, "codes_to_send": u.CodesTotal,
		"batches": n, "first_request_no": first, "last_request_no": last, "batches_sha256": digest,
		"expires_at": now.Add(s.ttl()).Format(time.RFC3339)})
}

// UploadApproval returns the latest approval request for upload id, if any.
func (s *Service) UploadApproval(ctx context.Context, id int64) (*Request, error) {
	var r Request
	res := s.DB.WithContext(ctx).Where("kind = ? AND form_token = ?", KindUpload, uploadFormToken(id)).Limit(1).Find(&r)
	if res.Error != nil || res.RowsAffected == 0 {
		return nil, res.Error
	}
	if r.Status == StatusPending && !s.Now.UTC().Before(r.ExpiresAt) {
		if err := s.ExpireDue(ctx); err != nil {
			return nil, err
		}
		r.Status = StatusExpired
	}
	return &r, nil
}

// startApprovedUpload, inside the decision's transaction, checks that the
// upload's batches are still exactly those approved and starts it.
func (s *Service) startApprovedUpload(ctx context.Context, tx *gorm.DB, enqueue jobs.Enqueue, ac audit.Context, r *Request) error {
	var call UploadCall
	if err := json.Unmarshal([]byte(r.Body), &call); err != nil {
		return fmt.Errorf("approval %d body: %w", r.ID, err)
	}
	digest, _, _, n, err := batchDigest(tx, call.UploadID)
	if err != nil {
		return err
	}
	if digest != call.BatchesSHA256 || n != call.Batches {
		return ErrUploadChanged
	}
	err = s.Uploads.StartTx(ctx, tx, enqueue, ac, call.UploadID)
	if errors.Is(err, uploads.ErrWrongState) {
		return ErrUploadChanged
	}
	if err != nil {
		return err
	}
	rec := s.record(ac, ActionSent, audit.Success, r, map[string]any{"upload_id": call.UploadID})
	_, err = audit.Append(ctx, tx, s.Now.UTC(), rec)
	return err
}

// failUpload ends a pending upload request whose upload changed: nothing
// is sent, audited as denied, the requester told.
func (s *Service) failUpload(ctx context.Context, ac audit.Context, u decider, id int64) (*Request, error) {
	now := s.Now.UTC()
	var r Request
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Request{}).Where("id = ? AND status = ?", id, StatusPending).
			Updates(map[string]any{"status": StatusFailed, "decided_by": u.id, "decided_at": now, "updated_at": now})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		if err := tx.Take(&r, id).Error; err != nil {
			return err
		}
		if _, err := audit.Append(ctx, tx, now, s.record(ac, ActionSent, audit.Denied, &r, map[string]any{"reason": "upload_changed"})); err != nil {
			return err
		}
		return s.notifyRequester(ctx, tx, &r, "failed", now)
	})
	if err != nil {
		return nil, err
	}
	s.alert(ctx, &r, "failed")
	return &r, ErrNotSendable
}

type decider struct{ id int64 }
