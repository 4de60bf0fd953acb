package stocks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
)

// SystemActor is who the background sync acts as, in audit entries and in
// "last read by".
const SystemActor = "system"

// ActionSyncStateChange is audited when the background sync sees a stock's
// state change at WeChat Pay.
const ActionSyncStateChange = "stock.sync_state_change"

// SyncDue lists the stocks that can still change (a stopped or deactivated
// stock never sends again and its counts are final) and that no sync has read
// within the last interval (their sync_next_at has passed), oldest read
// first, at most limit.
func (s *Service) SyncDue(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	var ids []int64
	err := s.DB.WithContext(ctx).Model(&models.Stock{}).
		Where("state NOT IN ? AND sync_next_at <= ?", []models.StockState{models.StateStopped, models.StateDeactivated}, now.UnixMicro()).
		Order("sync_next_at, id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("stocks due for sync: %w", err)
	}
	return ids, nil
}

// SyncResult is what one background read found.
type SyncResult struct {
	Stock   *models.Stock
	Claimed bool // false: another sync read it within this interval
	From    models.StockState
	Changed bool
}

// Sync reads one stock back from WeChat Pay on behalf of the system, if no
// other sync has claimed it within interval: the claim (moving sync_next_at
// an interval ahead) is one conditional UPDATE, so instances sharing the
// database read each stock once per interval. A state change seen this way
// is an audit entry by the system; an unchanged read is not (it would flood
// the log), but the stock records when and by whom it was last read.
func (s *Service) Sync(ctx context.Context, id int64, interval time.Duration) (SyncResult, error) {
	now := s.Now.UTC()
	res := s.DB.WithContext(ctx).Model(&models.Stock{}).
		Where("id = ? AND sync_next_at <= ?", id, now.UnixMicro()).
		Update("sync_next_at", now.Add(interval).UnixMicro())
	if res.Error != nil {
		return SyncResult{}, fmt.Errorf("claim stock %d for sync: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return SyncResult{}, nil
	}
	st, err := s.Get(ctx, id)
	if err != nil {
		return SyncResult{}, err
	}
	out := SyncResult{Claimed: true, From: st.State}
	meta, err := s.readInto(ctx, st)
	if err != nil {
		// Not audited: a read that fails changes nothing, and a failing
		// WeChat Pay would write an entry per stock per interval. The next
		// interval tries again; the error reaches the job's log.
		return out, fmt.Errorf("sync stock %d: %w", id, err)
	}
	st.RefreshedBy = SystemActor
	out.Stock, out.Changed = st, st.State != out.From
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The threshold is set on its own (SetThreshold): a read back that
		// loaded the stock before it must not put the old one back.
		if err := tx.Omit("Bundles", "LowStockThreshold").Save(st).Error; err != nil {
			return err
		}
		if !out.Changed {
			return nil
		}
		rec := audit.Context{Actor: SystemActor}.Record(ActionSyncStateChange, audit.Success, audit.TargetStock, fmt.Sprint(id))
		rec.WxRequestID = meta.RequestID
		rec.Detail = map[string]any{"from": out.From, "state": st.State, "stock_id": st.StockID,
			"product_coupon_id": st.ProductCouponID, "available_count": st.AvailableCount}
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("sync stock %d: %w", id, err)
	}
	return out, nil
}

// ErrBadThreshold refuses a threshold below zero or above MaxThreshold.
var ErrBadThreshold = errors.New("threshold out of range")

// Threshold is a stock's low-stock threshold: its own, or def.
func Threshold(st *models.Stock, def int64) int64 {
	if st.LowStockThreshold != nil {
		return *st.LowStockThreshold
	}
	return def
}

// ActionSetThreshold is audited when a stock's low-stock threshold is set.
const ActionSetThreshold = "stock.set_threshold"

// MaxThreshold bounds a threshold (WeChat Pay stocks hold at most tens of
// millions of codes).
const MaxThreshold = 1_000_000_000

// SetThreshold sets a stock's own low-stock threshold; nil goes back to the
// configured default.
func (s *Service) SetThreshold(ctx context.Context, ac audit.Context, id int64, threshold *int64) error {
	if threshold != nil && (*threshold < 0 || *threshold > MaxThreshold) {
		return ErrBadThreshold
	}
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.Stock{}).Where("id = ?", id).Update("low_stock_threshold", threshold)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		rec := ac.Record(ActionSetThreshold, audit.Success, audit.TargetStock, fmt.Sprint(id))
		rec.Detail = map[string]any{"low_stock_threshold": threshold}
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
}

// Brief is what other pages show of a stock they mention.
type Brief struct {
	ID              int64
	Kind            models.StockKind
	StockID         string
	ProductCouponID string
	Name            string
}

// Briefs returns the stocks with these IDs that exist, by ID.
func (s *Service) Briefs(ctx context.Context, ids []int64) (map[int64]Brief, error) {
	out := map[int64]Brief{}
	if len(ids) == 0 {
		return out, nil
	}
	var bs []Brief
	if err := s.DB.WithContext(ctx).Model(&models.Stock{}).Select("id, kind, stock_id, product_coupon_id, name").
		Where("id IN ?", ids).Scan(&bs).Error; err != nil {
		return nil, fmt.Errorf("stock briefs: %w", err)
	}
	for _, b := range bs {
		out[b.ID] = b
	}
	return out, nil
}

// MatchIDs returns the IDs of up to limit stocks a search term finds (as the
// stock list searches: ID prefixes, part of the name).
func (s *Service) MatchIDs(ctx context.Context, term string, limit int) ([]int64, error) {
	list, _, err := s.List(ctx, ListQuery{Q: term, Limit: limit})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(list))
	for i, st := range list {
		ids[i] = st.ID
	}
	return ids, nil
}
