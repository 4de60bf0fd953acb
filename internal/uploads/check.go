package uploads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/codefile"
	"voucherconsole/internal/filestore"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/wxops"
)

// BatchSize is the most codes a batch holds: both upload endpoints take at
// most 200 codes a call (documents 000 and 002).
const BatchSize = 200

// Sizes of the chunks the check writes in, each in a short transaction so the
// single connection of the embedded database is never held for long.
const (
	problemsPerWrite = 5000
	batchesPerWrite  = 100
	knownLookup      = 5000 // codes looked up in stock_codes in one statement
)

// FileError means the file cannot be used at all (not text, no code column,
// two code columns); Err is codefile's error, Line where it was found.
type FileError struct {
	Line int
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// CheckInput is a file to check for a stock.
type CheckInput struct {
	Stock    *models.Stock
	FileName string
	Body     io.Reader // the file, streamed
	MaxBytes int64     // larger files are refused with *TooLargeError
	UserID   *int64
}

// KindOf is the code rules of a stock.
func KindOf(st *models.Stock) (codefile.Kind, bool) {
	switch st.Kind {
	case models.KindProductCoupon:
		return codefile.ProductCoupon, true
	case models.KindBusifavor:
		return codefile.MerchantStock, true
	}
	return 0, false
}

// files is where uploads' files are kept: in the database when the console
// set a store (every instance reads them), else in the data directory.
func (s *Service) files() filestore.Store {
	if s.Files != nil {
		return s.Files
	}
	return filestore.Dir{Root: s.DataDir}
}

// OpenFile reads an upload's file back; ErrFileGone when this instance
// cannot (a file kept on another instance's disk before files were kept in
// the database).
func (s *Service) OpenFile(ctx context.Context, u *Upload) (filestore.File, error) {
	if u.FilePath == "" {
		return nil, ErrFileGone
	}
	f, err := s.files().Open(ctx, u.FilePath)
	if errors.Is(err, filestore.ErrNotFound) {
		return nil, ErrFileGone
	}
	return f, err
}

// Check keeps the file and checks it: a dry run that reads it once, stores
// the rows that will not be sent (invalid, duplicate in the file, already
// uploaded to the stock by the console) and fixes the batches of the codes
// to send, each with its request number, without sending anything. A file
// that cannot be used, or a check whose ctx ends, leaves nothing behind: no
// upload, no rows, no file.
func (s *Service) Check(ctx context.Context, ac audit.Context, in CheckInput) (*Upload, error) {
	u, err := s.Receive(ctx, ac, in)
	if err != nil {
		return nil, err
	}
	if err := s.CheckReceived(ctx, ac, u, in.Stock); err != nil {
		return nil, err
	}
	return u, nil
}

// Receive keeps the file of an upload to check (status checking); on error
// nothing is kept.
func (s *Service) Receive(ctx context.Context, ac audit.Context, in CheckInput) (*Upload, error) {
	if _, ok := KindOf(in.Stock); !ok || !stocks.CanUpload(in.Stock) {
		return nil, ErrCannotUpload
	}
	u, err := s.receive(ctx, in)
	if err != nil {
		s.auditCheckFailure(ctx, ac, in.Stock.ID, in.FileName, err)
		return nil, err
	}
	return u, nil
}

// CheckReceived checks a received upload for its stock. On error, including
// the end of ctx, the upload is removed with its rows and its file.
func (s *Service) CheckReceived(ctx context.Context, ac audit.Context, u *Upload, st *models.Stock) error {
	kind, ok := KindOf(st)
	if !ok || !stocks.CanUpload(st) {
		s.discard(u)
		return ErrCannotUpload
	}
	if err := s.check(ctx, ac, u, st, kind, nil); err != nil {
		s.discard(u)
		s.auditCheckFailure(ctx, ac, st.ID, u.FileName, err)
		return err
	}
	return nil
}

func (s *Service) auditCheckFailure(ctx context.Context, ac audit.Context, stockRef int64, fileName string, cause error) {
	rec := ac.Record(ActionCheck, audit.Failure, audit.TargetStock, strconv.FormatInt(stockRef, 10))
	rec.Detail = map[string]any{"file_name": cleanFileName(fileName), "error": auditError(ctx, cause)}
	if _, err := audit.Append(context.WithoutCancel(ctx), s.DB.Gorm, s.now(), rec); err != nil {
		s.log().Error("audit failed upload check", "err", err)
	}
}

// auditError is what the audit log says of a failed check: the file's
// problem, or that the request ended; never an internal error's text.
func auditError(ctx context.Context, err error) string {
	var fe *FileError
	var tl *TooLargeError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return "request_ended"
	case errors.As(err, &fe), errors.As(err, &tl), errors.Is(err, ErrEmptyFile), errors.Is(err, ErrNoRows), errors.Is(err, ErrCannotUpload):
		return err.Error()
	}
	return "internal_error"
}

// receive streams the file to the file store, hashing it, and records the
// upload as being checked.
func (s *Service) receive(ctx context.Context, in CheckInput) (*Upload, error) {
	h := sha256.New()
	key, n, err := s.files().Put(ctx, io.TeeReader(io.LimitReader(in.Body, in.MaxBytes+1), h))
	if err != nil {
		return nil, fmt.Errorf("keep file: %w", err)
	}
	if n > in.MaxBytes {
		err = &TooLargeError{Max: in.MaxBytes}
	}
	if err == nil && n == 0 {
		err = ErrEmptyFile
	}
	if err != nil {
		s.deleteFile(key)
		return nil, err
	}
	now := s.now()
	u := &Upload{
		StockRef: in.Stock.ID, UserID: in.UserID, FileName: cleanFileName(in.FileName), FilePath: key, FileSize: n,
		FileSHA256: hex.EncodeToString(h.Sum(nil)), Status: StatusChecking, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.DB.Gorm.WithContext(ctx).Create(u).Error; err != nil {
		s.deleteFile(key)
		return nil, fmt.Errorf("record upload: %w", err)
	}
	return u, nil
}

func (s *Service) deleteFile(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.files().Delete(ctx, key); err != nil {
		s.log().Error("delete upload file", "err", err)
	}
}

// cleanFileName keeps the base name of what the browser sent, bounded.
func cleanFileName(name string) string {
	name = filepath.Base(filepath.ToSlash(name))
	if name == "." || name == "/" || name == "" {
		name = "codes.csv"
	}
	r := []rune(name)
	if len(r) > 200 {
		r = r[len(r)-200:]
	}
	return string(r)
}

// discard removes an upload whose check did not complete: its rows, its
// batches and its file.
func (s *Service) discard(u *Upload) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("upload_id = ?", u.ID).Delete(&Problem{}).Error; err != nil {
			return err
		}
		if err := tx.Where("upload_id = ?", u.ID).Delete(&Batch{}).Error; err != nil {
			return err
		}
		return tx.Where("id = ? AND status = ?", u.ID, StatusChecking).Delete(&Upload{}).Error
	})
	if err != nil {
		s.log().Error("discard upload", "upload", u.ID, "err", err)
	}
	if u.FilePath != "" {
		s.deleteFile(u.FilePath)
	}
}

// checker accumulates what the check writes.
type checker struct {
	s        *Service
	ctx      context.Context
	u        *Upload
	stockRef int64
	reqBase  string
	now      time.Time

	problems []Problem
	lookup   []codeRow // valid codes not yet looked up in stock_codes
	send     []codeRow // codes to send, not yet in a batch
	batches  []Batch
	known    int64
	codes    int64
	nBatches int
}

type codeRow struct {
	code string
	row  int
}

// check reads the file and stores what it finds; read, when not nil, counts
// the bytes read so far.
func (s *Service) check(ctx context.Context, ac audit.Context, u *Upload, st *models.Stock, kind codefile.Kind, read *atomic.Int64) error {
	f, err := s.OpenFile(ctx, u)
	if err != nil {
		return err
	}
	defer f.Close()
	c := &checker{s: s, ctx: ctx, u: u, stockRef: st.ID, now: s.now(),
		// The request numbers of an upload's batches are this plus the batch
		// number: unique, and within both endpoints' alphabets and lengths.
		reqBase: wxops.NewRequestNo("UP", time.Now(), 24)}
	sum, err := codefile.Read(ctx, &countingFile{File: f, n: read}, kind, c.row)
	if err == nil {
		err = c.finish()
	}
	if err != nil {
		var le *codefile.LineError
		if errors.As(err, &le) {
			return &FileError{Line: le.Line, Err: le.Err}
		}
		return err
	}
	if sum.Rows == 0 {
		return ErrNoRows
	}
	u.Encoding, u.HasHeader = string(sum.Encoding), sum.HasHeader
	u.RowsRead, u.BlankRows = int64(sum.Rows), int64(sum.Blank)
	u.ValidCount, u.InvalidCount, u.DuplicateCount = int64(sum.Valid), int64(sum.Invalid), int64(sum.Duplicate)
	u.KnownCount, u.CodesTotal, u.BatchesTotal = c.known, c.codes, int64(c.nBatches)
	if u.ValidCount != u.KnownCount+u.CodesTotal {
		return fmt.Errorf("check of upload %d does not add up: %d valid, %d known, %d to send", u.ID, u.ValidCount, u.KnownCount, u.CodesTotal)
	}
	now := s.now()
	u.Status, u.CheckedAt = StatusChecked, &now
	return s.DB.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Upload{}).Where("id = ? AND status = ?", u.ID, StatusChecking).Updates(map[string]any{
			"status": u.Status, "checked_at": now, "updated_at": now, "encoding": u.Encoding, "has_header": u.HasHeader,
			"rows_read": u.RowsRead, "blank_rows": u.BlankRows, "valid_count": u.ValidCount, "invalid_count": u.InvalidCount,
			"duplicate_count": u.DuplicateCount, "known_count": u.KnownCount, "codes_total": u.CodesTotal, "batches_total": u.BatchesTotal,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("upload %d vanished during its check", u.ID)
		}
		rec := ac.Record(ActionCheck, audit.Success, audit.TargetUpload, uploadTarget(u.ID))
		rec.Detail = countsDetail(u)
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
}

// row is codefile's callback: one data row in file order.
func (c *checker) row(r codefile.Row) error {
	switch r.Reason {
	case "":
		c.lookup = append(c.lookup, codeRow{r.Code, r.Line})
		if len(c.lookup) >= knownLookup {
			return c.resolve()
		}
		return nil
	case codefile.ReasonDuplicate:
		c.problems = append(c.problems, Problem{UploadID: c.u.ID, RowNo: int64(r.Line), Code: r.Code,
			Reason: string(r.Reason), Detail: strconv.Itoa(r.FirstLine)})
	case codefile.ReasonBadChar:
		c.problems = append(c.problems, Problem{UploadID: c.u.ID, RowNo: int64(r.Line), Code: clip(r.Code),
			Reason: string(r.Reason), Detail: fmt.Sprintf("%d:%s", r.Pos, string(r.Char))})
	default:
		c.problems = append(c.problems, Problem{UploadID: c.u.ID, RowNo: int64(r.Line), Code: clip(r.Code), Reason: string(r.Reason)})
	}
	if len(c.problems) >= problemsPerWrite {
		return c.flushProblems()
	}
	return nil
}

// clip bounds what is kept of an invalid value (a row can be 4 KB).
func clip(s string) string {
	r := []rune(s)
	if len(r) > 100 {
		return string(r[:100]) + "…"
	}
	return s
}

// resolve looks the pending valid codes up in stock_codes: known ones are
// problems, the others go to batches.
func (c *checker) resolve() error {
	if len(c.lookup) == 0 {
		return nil
	}
	codes := make([]string, len(c.lookup))
	for i, cr := range c.lookup {
		codes[i] = cr.code
	}
	isKnown, err := c.s.knownCodes(c.ctx, c.stockRef, codes)
	if err != nil {
		return fmt.Errorf("look up uploaded codes: %w", err)
	}
	for _, cr := range c.lookup {
		if isKnown[cr.code] {
			c.known++
			c.problems = append(c.problems, Problem{UploadID: c.u.ID, RowNo: int64(cr.row), Code: cr.code, Reason: ReasonKnown})
			continue
		}
		c.send = append(c.send, cr)
		if len(c.send) == BatchSize {
			if err := c.addBatch(); err != nil {
				return err
			}
		}
	}
	c.lookup = c.lookup[:0]
	if len(c.problems) >= problemsPerWrite {
		return c.flushProblems()
	}
	return nil
}

func (c *checker) addBatch() error {
	if len(c.send) == 0 {
		return nil
	}
	codes := make([]string, len(c.send))
	rows := make([]int, len(c.send))
	for i, cr := range c.send {
		codes[i], rows[i] = cr.code, cr.row
	}
	cj, _ := json.Marshal(codes)
	rj, _ := json.Marshal(rows)
	c.nBatches++
	c.codes += int64(len(codes))
	c.batches = append(c.batches, Batch{
		UploadID: c.u.ID, BatchNo: c.nBatches, RequestNo: c.reqBase + "_" + strconv.Itoa(c.nBatches),
		CodeCount: len(codes), Codes: string(cj), RowNos: string(rj), Status: BatchPending,
		CreatedAt: c.now, UpdatedAt: c.now,
	})
	c.send = c.send[:0]
	if len(c.batches) >= batchesPerWrite {
		return c.flushBatches()
	}
	return nil
}

func (c *checker) flushProblems() error {
	if len(c.problems) == 0 {
		return nil
	}
	if err := c.s.insertRows(c.ctx, "upload_problems", problemCols, problemRows(c.problems)); err != nil {
		return fmt.Errorf("store problems: %w", err)
	}
	c.problems = c.problems[:0]
	return nil
}

func (c *checker) flushBatches() error {
	if len(c.batches) == 0 {
		return nil
	}
	if err := c.s.insertRows(c.ctx, "upload_batches", batchCols, batchRows(c.batches)); err != nil {
		return fmt.Errorf("store batches: %w", err)
	}
	c.batches = c.batches[:0]
	return nil
}

func (c *checker) finish() error {
	if err := c.resolve(); err != nil {
		return err
	}
	if err := c.addBatch(); err != nil {
		return err
	}
	if err := c.flushBatches(); err != nil {
		return err
	}
	return c.flushProblems()
}

// countingFile counts what is read of a file (for the check's progress)
// and still tells its size (which sizes codefile's duplicate table).
type countingFile struct {
	filestore.File
	n *atomic.Int64
}

func (c *countingFile) Read(p []byte) (int, error) {
	n, err := c.File.Read(p)
	if c.n != nil {
		c.n.Add(int64(n))
	}
	return n, err
}
