package uploads

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"voucherconsole/internal/csvcell"
)

// Progress is what the upload page shows while sending, and what
// /uploads/{id}/progress returns.
type Progress struct {
	Status       Status  `json:"status"`
	CodesTotal   int64   `json:"codes_total"`
	CodesDone    int64   `json:"codes_done"`
	BatchesTotal int64   `json:"batches_total"`
	BatchesDone  int64   `json:"batches_done"`
	Percent      float64 `json:"percent"`
	// Rate is codes per second over the last RateWindow; ETASeconds is the
	// time left at that rate, -1 when unknown.
	Rate       float64 `json:"rate"`
	ETASeconds int64   `json:"eta_seconds"`
	Active     bool    `json:"active"`
	Ended      bool    `json:"ended"`
}

// RateWindow is the window the send rate is measured over.
const RateWindow = 30 * time.Second

// Progress measures an upload's progress.
func (s *Service) Progress(ctx context.Context, u *Upload) (Progress, error) {
	p := Progress{
		Status: u.Status, CodesTotal: u.CodesTotal, CodesDone: u.CodesDone(),
		BatchesTotal: u.BatchesTotal, BatchesDone: u.BatchesSent + u.BatchesFailed,
		ETASeconds: -1, Active: u.Status.Active(), Ended: u.Status.Ended(),
	}
	switch {
	case u.CodesTotal > 0:
		p.Percent = float64(p.CodesDone) * 100 / float64(u.CodesTotal)
	case u.Status == StatusFinished:
		p.Percent = 100
	}
	if !p.Active {
		return p, nil
	}
	now := s.now()
	var first Batch
	err := s.DB.Gorm.WithContext(ctx).Select("done_at").
		Where("upload_id = ? AND done_at >= ?", u.ID, now.Add(-RateWindow)).
		Order("done_at").Limit(1).Find(&first).Error
	if err != nil || first.DoneAt == nil {
		return p, err
	}
	var codes int64
	if err := s.DB.Gorm.WithContext(ctx).Model(&Batch{}).Select("COALESCE(SUM(code_count), 0)").
		Where("upload_id = ? AND done_at >= ?", u.ID, *first.DoneAt).Scan(&codes).Error; err != nil {
		return p, err
	}
	if span := now.Sub(*first.DoneAt); span >= time.Second {
		p.Rate = float64(codes) / span.Seconds()
	}
	if p.Rate > 0 {
		p.ETASeconds = int64(float64(u.NotSent()) / p.Rate)
	}
	return p, nil
}

// FirstProblems returns the first n rows that will not be sent, in file order.
func (s *Service) FirstProblems(ctx context.Context, uploadID int64, n int) ([]Problem, error) {
	var out []Problem
	err := s.DB.Gorm.WithContext(ctx).Where("upload_id = ?", uploadID).Order("row_no, id").Limit(n).Find(&out).Error
	return out, err
}

// WxFailure is a WeChat Pay refusal and how many codes it concerned.
type WxFailure struct {
	Code, Message string
	Codes         int64
}

// WxFailures groups the codes WeChat Pay refused by its error code and
// message: whole batches refused, and single codes refused within accepted
// batches.
func (s *Service) WxFailures(ctx context.Context, uploadID int64) ([]WxFailure, error) {
	var out []WxFailure
	idx := map[[2]string]int{}
	add := func(code, msg string, n int64) {
		k := [2]string{code, msg}
		if i, ok := idx[k]; ok {
			out[i].Codes += n
			return
		}
		idx[k] = len(out)
		out = append(out, WxFailure{Code: code, Message: msg, Codes: n})
	}
	var groups []struct {
		ErrorCode, ErrorMessage string
		Codes                   int64
	}
	if err := s.DB.Gorm.WithContext(ctx).Model(&Batch{}).
		Select("error_code, error_message, SUM(code_count) AS codes").
		Where("upload_id = ? AND status = ?", uploadID, BatchFailed).
		Group("error_code, error_message").Order("codes DESC").Scan(&groups).Error; err != nil {
		return nil, err
	}
	for _, g := range groups {
		add(g.ErrorCode, g.ErrorMessage, g.Codes)
	}
	after := 0
	for {
		var page []Batch
		if err := s.DB.Gorm.WithContext(ctx).Select("batch_no", "failed_codes").
			Where("upload_id = ? AND batch_no > ? AND failed_codes <> ''", uploadID, after).
			Order("batch_no").Limit(200).Find(&page).Error; err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, b := range page {
			after = b.BatchNo
			var fs []FailedCode
			_ = json.Unmarshal([]byte(b.FailedCodes), &fs)
			for _, f := range fs {
				add(f.Err, f.Message, 1)
			}
		}
	}
}

// ReportLine is one code that did not upload.
type ReportLine struct {
	Row    int64
	Code   string
	Reason string // a codefile reason, ReasonKnown, ReasonWxExists, ReasonWxFailed or ReasonNotSent
	Detail string // duplicate: first row; bad_char: "pos:char"; WeChat Pay: code and message
	// WxCode and WxMessage are WeChat Pay's, for ReasonWxFailed.
	WxCode, WxMessage string
}

// ReportText lets the caller word the CSV in the user's language.
type ReportText struct {
	Header []string // five columns: row, code, reason code, reason, detail
	Reason func(l ReportLine) (reason, detail string)
}

// WriteReport streams the CSV of every code that did not upload — invalid,
// duplicate in the file, already on the stock, refused by WeChat Pay, not
// sent — in file order, as UTF-8 with a byte order mark so that Excel reads
// it as such. Memory use does not grow with the file.
func (s *Service) WriteReport(ctx context.Context, u *Upload, w io.Writer, text ReportText) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString("\uFEFF"); err != nil {
		return err
	}
	cw := csvcell.NewWriter(bw) // every cell escaped for spreadsheets: invalid codes are typed by anyone
	cw.UseCRLF(true)            // what Excel writes and expects
	if err := cw.Write(text.Header); err != nil {
		return err
	}
	write := func(l ReportLine) error {
		reason, detail := text.Reason(l)
		return cw.Write([]string{strconv.FormatInt(l.Row, 10), l.Code, l.Reason, reason, detail})
	}
	probs := &problemStream{s: s, ctx: ctx, uploadID: u.ID}
	// Before it is started, an upload's report is its check: nothing is
	// "not sent" yet.
	sent := &batchStream{s: s, ctx: ctx, uploadID: u.ID, done: u.Status == StatusChecked || u.Status == StatusAbandoned}
	a, aok, err := probs.next()
	if err != nil {
		return err
	}
	b, bok, err := sent.next()
	if err != nil {
		return err
	}
	n := 0
	for aok || bok {
		if aok && (!bok || a.Row <= b.Row) {
			err = write(a)
			if err == nil {
				a, aok, err = probs.next()
			}
		} else {
			err = write(b)
			if err == nil {
				b, bok, err = sent.next()
			}
		}
		if err != nil {
			return err
		}
		if n++; n%4096 == 0 {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// problemStream pages through upload_problems in row order (keyset pages,
// so the embedded database's single connection is never held between rows).
type problemStream struct {
	s        *Service
	ctx      context.Context
	uploadID int64
	page     []Problem
	lastRow  int64
	lastID   int64
	done     bool
}

func (p *problemStream) next() (ReportLine, bool, error) {
	if len(p.page) == 0 && !p.done {
		err := p.s.DB.Gorm.WithContext(p.ctx).Where("upload_id = ? AND (row_no > ? OR (row_no = ? AND id > ?))",
			p.uploadID, p.lastRow, p.lastRow, p.lastID).Order("row_no, id").Limit(2000).Find(&p.page).Error
		if err != nil {
			return ReportLine{}, false, err
		}
		if len(p.page) == 0 {
			p.done = true
		}
	}
	if len(p.page) == 0 {
		return ReportLine{}, false, nil
	}
	pr := p.page[0]
	p.page = p.page[1:]
	p.lastRow, p.lastID = pr.RowNo, pr.ID
	return ReportLine{Row: pr.RowNo, Code: pr.Code, Reason: pr.Reason, Detail: pr.Detail}, true, nil
}

// batchStream yields the codes of batches that did not upload, in batch (so
// row) order: codes WeChat Pay had already or refused, and codes of batches
// refused whole or never sent.
type batchStream struct {
	s        *Service
	ctx      context.Context
	uploadID int64
	after    int
	done     bool
	pending  []ReportLine
	page     []Batch
}

func (p *batchStream) next() (ReportLine, bool, error) {
	for len(p.pending) == 0 {
		if len(p.page) == 0 {
			if p.done {
				return ReportLine{}, false, nil
			}
			err := p.s.DB.Gorm.WithContext(p.ctx).
				Where("upload_id = ? AND batch_no > ? AND (status <> ? OR exist_codes <> '' OR failed_codes <> '')",
					p.uploadID, p.after, BatchSent).Order("batch_no").Limit(50).Find(&p.page).Error
			if err != nil {
				return ReportLine{}, false, err
			}
			if len(p.page) == 0 {
				p.done = true
				return ReportLine{}, false, nil
			}
		}
		b := p.page[0]
		p.page = p.page[1:]
		p.after = b.BatchNo
		p.pending = batchLines(&b)
	}
	l := p.pending[0]
	p.pending = p.pending[1:]
	return l, true, nil
}

func batchLines(b *Batch) []ReportLine {
	var codes []string
	var rows []int64
	_ = json.Unmarshal([]byte(b.Codes), &codes)
	_ = json.Unmarshal([]byte(b.RowNos), &rows)
	rowOf := func(i int) int64 {
		if i < len(rows) {
			return rows[i]
		}
		return 0
	}
	var out []ReportLine
	switch b.Status {
	case BatchPending:
		for i, c := range codes {
			out = append(out, ReportLine{Row: rowOf(i), Code: c, Reason: ReasonNotSent})
		}
	case BatchFailed:
		for i, c := range codes {
			out = append(out, ReportLine{Row: rowOf(i), Code: c, Reason: ReasonWxFailed, WxCode: b.ErrorCode, WxMessage: b.ErrorMessage})
		}
	case BatchSent:
		exist := map[string]bool{}
		var el []string
		_ = json.Unmarshal([]byte(b.ExistCodes), &el)
		for _, c := range el {
			exist[c] = true
		}
		failed := map[string]FailedCode{}
		var fl []FailedCode
		_ = json.Unmarshal([]byte(b.FailedCodes), &fl)
		for _, f := range fl {
			failed[f.Code] = f
		}
		for i, c := range codes {
			if f, ok := failed[c]; ok {
				out = append(out, ReportLine{Row: rowOf(i), Code: c, Reason: ReasonWxFailed, WxCode: f.Err, WxMessage: f.Message})
			} else if exist[c] {
				out = append(out, ReportLine{Row: rowOf(i), Code: c, Reason: ReasonWxExists})
			}
		}
	}
	return out
}
