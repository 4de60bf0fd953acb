// Package alerts tells people when something needs them: a stock low on
// codes or running out, a stock ending soon, a failed upload, a WeChat Pay
// call whose outcome is unknown — or anything another part of the console
// raises (an approval waiting, say).
//
// An alert is one row per condition while the condition holds: Raise on a
// condition already open does nothing, so a condition alerts once until
// Clear. Raising inserts the alert and one delivery job per configured
// outside channel (a WeCom group robot, a generic JSON webhook) in one
// transaction; each delivery is a River job retried with backoff and
// recorded (attempts, last status) for admins.
package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"voucherconsole/internal/clock"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/models"
)

// Kinds raised by the console's own monitor. Other packages may raise kinds
// of their own: a kind needs the messages alerts.<kind>.title and
// alerts.<kind>.text (fmt verbs filled from Alert.Args) in both catalogues.
const (
	KindLowStock     = "low_stock"     // available codes below the stock's threshold
	KindRunOut       = "run_out"       // at the current rate, codes run out within a day
	KindEndingSoon   = "ending_soon"   // the stock's available period ends soon
	KindUploadFailed = "upload_failed" // a code upload ended failed
	KindOpUnknown    = "op_unknown"    // a WeChat Pay call's outcome unknown for over 10 minutes
)

// Channels of outside delivery.
const (
	ChannelWeCom   = "wecom"
	ChannelWebhook = "webhook"
)

// Audience is who sees an alert in the console: holders of any of Roles,
// and UserID. Admins see every alert.
type Audience struct {
	Roles  []models.Role
	UserID *int64
}

// Alert is what a caller raises.
type Alert struct {
	Kind string
	// Key names the condition within its kind (e.g. "stock:12"): one open
	// alert per (Kind, Key).
	Key      string
	Audience Audience
	StockRef *int64
	// Link is the console path the alert leads to ("/stocks/12").
	Link string
	// Args fill the fmt verbs of the kind's messages, in order.
	Args []string
}

// Row is an alert as stored.
type Row struct {
	ID        int64 `gorm:"primaryKey"`
	Kind      string
	CondKey   string
	Audience  string // comma-separated roles
	UserID    *int64
	StockRef  *int64
	Link      string
	Params    string // JSON array of Args
	RaisedAt  time.Time
	ClearedAt *time.Time
}

// TableName is the alerts table.
func (Row) TableName() string { return "alerts" }

// ArgList decodes Params.
func (r *Row) ArgList() []string {
	var out []string
	_ = json.Unmarshal([]byte(r.Params), &out)
	return out
}

// Delivery is one outside delivery of an alert.
type Delivery struct {
	ID          int64 `gorm:"primaryKey"`
	AlertID     int64
	Channel     string
	Status      string // pending, delivered, failed
	Attempts    int
	LastStatus  int
	LastError   string
	CreatedAt   time.Time
	DeliveredAt *time.Time
	UpdatedAt   time.Time
}

// TableName is the deliveries table.
func (Delivery) TableName() string { return "alert_deliveries" }

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

type readRow struct {
	AlertID int64 `gorm:"primaryKey"`
	UserID  int64 `gorm:"primaryKey"`
	ReadAt  time.Time
}

func (readRow) TableName() string { return "alert_reads" }

// Transactor runs fn in a transaction whose enqueued jobs commit with it
// (jobs.Engine).
type Transactor interface {
	Transaction(ctx context.Context, fn func(tx *gorm.DB, enqueue jobs.Enqueue) error) error
}

// Service raises, clears and lists alerts.
type Service struct {
	DB   *gorm.DB
	Jobs Transactor
	Now  clock.Func
	// Channels are the outside channels configured (ChannelWeCom,
	// ChannelWebhook); each alert raised is delivered to each.
	Channels []string
}

// Bounds on what a caller may raise; longer values are refused, not cut.
const (
	maxKind = 64
	maxKey  = 200
	maxLink = 500
	maxArg  = 500
	maxArgs = 10
)

// ErrInvalid is an alert that cannot be stored.
var ErrInvalid = errors.New("invalid alert")

func (a Alert) validate() error {
	if a.Kind == "" || len(a.Kind) > maxKind || a.Key == "" || len(a.Key) > maxKey || len(a.Link) > maxLink ||
		len(a.Args) > maxArgs || (a.Link != "" && !strings.HasPrefix(a.Link, "/")) {
		return ErrInvalid
	}
	for _, s := range a.Args {
		if len(s) > maxArg {
			return ErrInvalid
		}
	}
	return nil
}

// Raise opens an alert for a condition unless one is already open; it
// reports whether it opened one. The alert and its delivery jobs commit
// together.
func (s *Service) Raise(ctx context.Context, a Alert) (bool, error) {
	if err := a.validate(); err != nil {
		return false, err
	}
	args := a.Args
	if args == nil {
		args = []string{}
	}
	params, _ := json.Marshal(args)
	roles := make([]string, len(a.Audience.Roles))
	for i, r := range a.Audience.Roles {
		roles[i] = string(r)
	}
	now := s.Now.UTC()
	row := &Row{Kind: a.Kind, CondKey: a.Key, Audience: strings.Join(roles, ","), UserID: a.Audience.UserID,
		StockRef: a.StockRef, Link: a.Link, Params: string(params), RaisedAt: now}
	raised := false
	err := s.Jobs.Transaction(ctx, func(tx *gorm.DB, enqueue jobs.Enqueue) error {
		// The partial unique index on open alerts makes this a no-op while
		// the condition's alert is open, also against a concurrent Raise.
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		raised = true
		for _, ch := range s.Channels {
			d := &Delivery{AlertID: row.ID, Channel: ch, Status: DeliveryPending, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(d).Error; err != nil {
				return err
			}
			if _, err := enqueue(DeliverArgs{DeliveryID: d.ID}, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("raise alert %s %s: %w", a.Kind, a.Key, err)
	}
	return raised, nil
}

// Clear closes the open alert of a condition, if any; the next Raise of it
// alerts again.
func (s *Service) Clear(ctx context.Context, kind, key string) error {
	err := s.DB.WithContext(ctx).Model(&Row{}).Where("kind = ? AND cond_key = ? AND cleared_at IS NULL", kind, key).
		Update("cleared_at", s.Now.UTC()).Error
	if err != nil {
		return fmt.Errorf("clear alert %s %s: %w", kind, key, err)
	}
	return nil
}

// ClearOthers closes the open alerts of a kind whose key is not in holding:
// the conditions a full evaluation no longer finds.
func (s *Service) ClearOthers(ctx context.Context, kind string, holding []string) error {
	var open []string
	if err := s.DB.WithContext(ctx).Model(&Row{}).Where("kind = ? AND cleared_at IS NULL", kind).
		Pluck("cond_key", &open).Error; err != nil {
		return fmt.Errorf("open alerts: %w", err)
	}
	for _, k := range open {
		if !slices.Contains(holding, k) {
			if err := s.Clear(ctx, kind, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// Viewer is who looks at alerts.
type Viewer struct {
	UserID int64
	Roles  []models.Role
}

func (v Viewer) admin() bool { return slices.Contains(v.Roles, models.RoleAdmin) }

// visible restricts q to the alerts v may see.
func (v Viewer) visible(q *gorm.DB) *gorm.DB {
	if v.admin() {
		return q
	}
	conds := []string{"alerts.user_id = ?"}
	args := []any{v.UserID}
	for _, r := range v.Roles {
		// audience is a short comma-separated list of role names, which
		// never contain commas or LIKE wildcards.
		conds = append(conds, "(',' || alerts.audience || ',') LIKE ?")
		args = append(args, "%,"+string(r)+",%")
	}
	return q.Where("("+strings.Join(conds, " OR ")+")", args...)
}

// Item is an alert as a viewer sees it.
type Item struct {
	Row
	Read bool
}

// List returns the latest alerts v may see, newest first.
func (s *Service) List(ctx context.Context, v Viewer, limit int) ([]Item, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	var rows []struct {
		Row    `gorm:"embedded"`
		ReadAt *time.Time
	}
	q := s.DB.WithContext(ctx).Table("alerts").
		Select("alerts.*, alert_reads.read_at").
		Joins("LEFT JOIN alert_reads ON alert_reads.alert_id = alerts.id AND alert_reads.user_id = ?", v.UserID)
	if err := v.visible(q).Order("alerts.id DESC").Limit(limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	out := make([]Item, len(rows))
	for i, r := range rows {
		out[i] = Item{Row: r.Row, Read: r.ReadAt != nil}
	}
	return out, nil
}

// Unread counts the open alerts v may see and has not read.
func (s *Service) Unread(ctx context.Context, v Viewer) (int64, error) {
	var n int64
	q := s.DB.WithContext(ctx).Table("alerts").
		Where("alerts.cleared_at IS NULL").
		Where("NOT EXISTS (SELECT 1 FROM alert_reads r WHERE r.alert_id = alerts.id AND r.user_id = ?)", v.UserID)
	if err := v.visible(q).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count unread alerts: %w", err)
	}
	return n, nil
}

// MarkAllRead marks every alert v may see as read by v.
func (s *Service) MarkAllRead(ctx context.Context, v Viewer) error {
	var ids []int64
	q := s.DB.WithContext(ctx).Table("alerts").
		Where("NOT EXISTS (SELECT 1 FROM alert_reads r WHERE r.alert_id = alerts.id AND r.user_id = ?)", v.UserID)
	if err := v.visible(q).Limit(10000).Pluck("alerts.id", &ids).Error; err != nil {
		return fmt.Errorf("mark alerts read: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	now := s.Now.UTC()
	rows := make([]readRow, len(ids))
	for i, id := range ids {
		rows[i] = readRow{AlertID: id, UserID: v.UserID, ReadAt: now}
	}
	err := s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error
	if err != nil {
		return fmt.Errorf("mark alerts read: %w", err)
	}
	return nil
}

// Deliveries returns the outside deliveries of the given alerts, by alert.
func (s *Service) Deliveries(ctx context.Context, alertIDs []int64) (map[int64][]Delivery, error) {
	out := map[int64][]Delivery{}
	if len(alertIDs) == 0 {
		return out, nil
	}
	var ds []Delivery
	if err := s.DB.WithContext(ctx).Where("alert_id IN ?", alertIDs).Order("id").Find(&ds).Error; err != nil {
		return nil, fmt.Errorf("alert deliveries: %w", err)
	}
	for _, d := range ds {
		out[d.AlertID] = append(out[d.AlertID], d)
	}
	return out, nil
}

// DeliverArgs is the River job delivering one alert to one channel.
type DeliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// QueueName is the queue of alert deliveries and of the audit stream.
const QueueName = "alerts"

// maxAttempts: with the backoff below, about a day of retries.
const maxAttempts = 20

// Kind is the River job kind.
func (DeliverArgs) Kind() string { return "alert_deliver" }

// InsertOpts puts deliveries on their own queue, so a slow receiver never
// holds up uploads.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: maxAttempts}
}
