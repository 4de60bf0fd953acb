package audit

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/csvcell"
)

// ExportHeader is the CSV export's header row: stable column names, so
// scripts can rely on them.
var ExportHeader = []string{
	"seq", "occurred_at_utc", "occurred_at_local", "actor_id", "actor", "actor_roles",
	"action", "target_type", "target_id", "outcome",
	"wx_request_no", "wx_error_code", "wx_request_id",
	"client_ip", "user_agent", "request_id", "detail", "prev_hash", "hash", "hash_scheme",
}

// UTF8BOM starts the export so spreadsheet programs (Excel in a Chinese
// locale above all) read it as UTF-8.
const UTF8BOM = "\uFEFF"

// ExportBatch is how many entries the export reads at a time; memory stays
// flat however many entries it writes.
const ExportBatch = 1000

// Export writes the entries f selects with seq ≤ through (0: all), newest
// first (as List orders them), as CSV (UTF-8 with BOM, RFC 4180 quoting) to w. Entries are read in
// keyset batches, each a query of its own, so no cursor or connection is held
// while a slow client reads; flush (optional) is called after each batch. It
// returns how many entries it wrote.
func Export(ctx context.Context, db *gorm.DB, w io.Writer, f Filter, through int64, loc *time.Location, flush func()) (int64, error) {
	return ExportWithHeader(ctx, db, w, f, through, loc, flush, ExportHeader)
}

// ExportWithHeader is Export with the header row given: the column names in
// the reader's language, one for each of ExportHeader's columns.
func ExportWithHeader(ctx context.Context, db *gorm.DB, w io.Writer, f Filter, through int64, loc *time.Location, flush func(), header []string) (int64, error) {
	if len(header) != len(ExportHeader) {
		return 0, fmt.Errorf("audit export: %d header names for %d columns", len(header), len(ExportHeader))
	}
	if loc == nil {
		loc = time.UTC
	}
	if _, err := io.WriteString(w, UTF8BOM); err != nil {
		return 0, err
	}
	cw := csvcell.NewWriter(w) // every cell escaped for spreadsheets
	if err := cw.Write(header); err != nil {
		return 0, err
	}
	var (
		n    int64
		from *position
	)
	row := make([]string, len(ExportHeader))
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		batch, err := list(ctx, db, f, from, "<", through, ExportBatch)
		if err != nil {
			return n, fmt.Errorf("audit export: %w", err)
		}
		for i := range batch {
			exportRow(row, &batch[i], loc)
			if err := cw.Write(row); err != nil {
				return n, err
			}
			n++
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, err
		}
		if flush != nil {
			flush()
		}
		if len(batch) < ExportBatch {
			return n, nil
		}
		pos := positionOf(&batch[len(batch)-1])
		from = &pos
	}
}

func exportRow(row []string, e *Entry, loc *time.Location) {
	actorID := ""
	if e.ActorID != nil {
		actorID = strconv.FormatInt(*e.ActorID, 10)
	}
	row[0] = strconv.FormatInt(e.Seq, 10)
	row[1] = e.OccurredAt.UTC().Format(timeLayout)
	row[2] = e.OccurredAt.In(loc).Format("2006-01-02 15:04:05 -07:00")
	row[3] = actorID
	row[4] = e.Actor
	row[5] = e.ActorRoles
	row[6] = e.Action
	row[7] = e.TargetType
	row[8] = e.TargetID
	row[9] = string(e.Outcome)
	row[10] = e.WxRequestNo
	row[11] = e.WxErrorCode
	row[12] = e.WxRequestID
	row[13] = e.ClientIP
	row[14] = e.UserAgent
	row[15] = e.RequestID
	row[16] = e.Detail
	row[17] = e.PrevHash
	row[18] = e.Hash
	row[19] = strconv.Itoa(max(e.HashScheme, SchemeWhole))
}
