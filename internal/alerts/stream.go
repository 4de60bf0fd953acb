package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
)

// The audit stream sends every audit entry, in sequence order, to the
// generic webhook, for a SIEM. It is at least once: a batch is sent, then
// the cursor moves past it; a crash in between sends the batch again, so a
// receiver deduplicates by seq. It resumes after the last delivered seq.

// StreamCursor names the audit stream's row in outbound_cursors.
const StreamCursor = "audit_stream"

// streamBatch is how many entries one POST carries.
const streamBatch = 200

// StreamArgs is the periodic River job that sends what is new.
type StreamArgs struct{}

// Kind is the River job kind.
func (StreamArgs) Kind() string { return "audit_stream" }

// InsertOpts: one stream job at a time (unique while it waits or runs), so
// batches leave in order.
func (StreamArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled},
	}}
}

type cursorRow struct {
	Name      string `gorm:"primaryKey"`
	LastSeq   int64
	UpdatedAt time.Time
}

func (cursorRow) TableName() string { return "outbound_cursors" }

// StreamWorker sends audit entries.
type StreamWorker struct {
	river.WorkerDefaults[StreamArgs]
	DB     *gorm.DB
	Client *http.Client
	URL    string
	Now    clock.Func
	// Budget bounds one run; what is left goes at the next.
	Budget time.Duration
}

// StreamedEntry is an audit entry as the stream sends it.
type StreamedEntry struct {
	Seq         int64  `json:"seq"`
	OccurredAt  string `json:"occurred_at"`
	Actor       string `json:"actor"`
	ActorRoles  string `json:"actor_roles"`
	Action      string `json:"action"`
	TargetType  string `json:"target_type"`
	TargetID    string `json:"target_id"`
	Outcome     string `json:"outcome"`
	WxRequestNo string `json:"wx_request_no,omitempty"`
	WxErrorCode string `json:"wx_error_code,omitempty"`
	WxRequestID string `json:"wx_request_id,omitempty"`
	ClientIP    string `json:"client_ip,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
	Detail      string `json:"detail,omitempty"`
	Hash        string `json:"hash"`
}

// Work sends batches until caught up or out of budget.
func (w *StreamWorker) Work(ctx context.Context, job *river.Job[StreamArgs]) error {
	budget := w.Budget
	if budget <= 0 {
		budget = 15 * time.Second
	}
	deadline := time.Now().Add(budget)
	for time.Now().Before(deadline) {
		n, err := w.sendBatch(ctx)
		if err != nil || n < streamBatch {
			return err
		}
	}
	return nil
}

// LastSeq is the last seq delivered by the stream.
func LastSeq(ctx context.Context, db *gorm.DB) (int64, error) {
	var c cursorRow
	err := db.WithContext(ctx).Take(&c, "name = ?", StreamCursor).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, nil
	}
	return c.LastSeq, err
}

func (w *StreamWorker) sendBatch(ctx context.Context) (int, error) {
	last, err := LastSeq(ctx, w.DB)
	if err != nil {
		return 0, err
	}
	var es []audit.Entry
	if err := w.DB.WithContext(ctx).Where("seq > ?", last).Order("seq").Limit(streamBatch).Find(&es).Error; err != nil {
		return 0, err
	}
	if len(es) == 0 {
		return 0, nil
	}
	out := make([]StreamedEntry, len(es))
	for i, e := range es {
		out[i] = StreamedEntry{Seq: e.Seq, OccurredAt: e.OccurredAt.UTC().Format(time.RFC3339Nano), Actor: e.Actor,
			ActorRoles: e.ActorRoles, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
			Outcome: string(e.Outcome), WxRequestNo: e.WxRequestNo, WxErrorCode: e.WxErrorCode, WxRequestID: e.WxRequestID,
			ClientIP: e.ClientIP, RequestID: e.RequestID, Detail: e.Detail, Hash: e.Hash}
	}
	body, _ := json.Marshal(map[string]any{"type": "audit", "entries": out})
	if _, problem := post(ctx, w.Client, w.URL, body, false); problem != "" {
		return 0, fmt.Errorf("audit stream after seq %d: %s", last, problem)
	}
	c := cursorRow{Name: StreamCursor, LastSeq: es[len(es)-1].Seq, UpdatedAt: w.Now.UTC()}
	err = w.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "name"}},
		DoUpdates: clause.AssignmentColumns([]string{"last_seq", "updated_at"}),
	}).Create(&c).Error
	return len(es), err
}
