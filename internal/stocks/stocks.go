package stocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/text/width"
	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay"
)

// Sentinel errors; handlers map them to messages in the user's language.
var (
	ErrNotFound          = errors.New("stock not found")
	ErrAlreadyRegistered = errors.New("stock already registered")
	ErrInvalidID         = errors.New("invalid stock ID")
)

// Actions audited by this package.
const (
	ActionRegister = "stock.register"
	ActionRefresh  = "stock.refresh"
	ActionCreate   = "stock.create"
)

// Reader is the part of the WeChat Pay client that reads stocks back.
type Reader interface {
	GetProductCouponStock(ctx context.Context, productCouponID, stockID string) (*wxpay.ProductCouponStock, error)
	GetFavorStock(ctx context.Context, stockID string) (*wxpay.FavorStock, error)
	GetBusifavorStock(ctx context.Context, stockID string) (*wxpay.BusifavorStock, error)
}

// Service manages stocks.
type Service struct {
	DB *gorm.DB
	// Search runs List (database.DB.Search); nil means DB.
	Search *gorm.DB
	WX     Reader
	Create Creator // voucher stocks (create.go)
	Now    clock.Func
}

// idPattern is what WeChat Pay IDs look like; anything else is refused before
// a call (and would not fit a URL path safely).
var idPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// RegisterInput names an existing stock.
type RegisterInput struct {
	Kind            models.StockKind
	ProductCouponID string
	StockID         string
	BundleIDs       []string
	Name            string // optional display name; product-coupon stocks have none of their own
	Demo            bool
}

// Register reads a stock back from WeChat Pay to confirm it exists and
// records it with the details read. A WeChat Pay error is returned as is
// (*wxpay.APIError) after a failure audit entry.
func (s *Service) Register(ctx context.Context, ac audit.Context, in RegisterInput) (*models.Stock, error) {
	in.StockID = strings.TrimSpace(in.StockID)
	in.ProductCouponID = strings.TrimSpace(in.ProductCouponID)
	if in.Kind != models.KindProductCoupon {
		in.ProductCouponID = ""
		in.BundleIDs = nil
	}
	if !idPattern.MatchString(in.StockID) || (in.Kind == models.KindProductCoupon && !idPattern.MatchString(in.ProductCouponID)) {
		return nil, ErrInvalidID
	}
	for _, b := range in.BundleIDs {
		if !idPattern.MatchString(b) {
			return nil, ErrInvalidID
		}
	}
	target := targetName(in.Kind, in.ProductCouponID, in.StockID)
	var existing int64
	if err := s.DB.WithContext(ctx).Model(&models.Stock{}).
		Where("kind = ? AND product_coupon_id = ? AND stock_id = ?", in.Kind, in.ProductCouponID, in.StockID).
		Count(&existing).Error; err != nil {
		return nil, err
	}
	if existing > 0 {
		return nil, ErrAlreadyRegistered
	}

	st := &models.Stock{Kind: in.Kind, StockID: in.StockID, ProductCouponID: in.ProductCouponID, Demo: in.Demo, CreatedBy: ac.ActorID}
	meta, err := s.readInto(ctx, st)
	if err != nil {
		s.auditFailure(ctx, ac, ActionRegister, target, err, nil)
		return nil, err
	}
	st.RefreshedBy = ac.Actor
	if in.Name != "" {
		st.Name = in.Name
	}
	for _, b := range in.BundleIDs {
		st.Bundles = append(st.Bundles, models.StockBundle{ProductCouponID: in.ProductCouponID, StockBundleID: b})
	}
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(st).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return ErrAlreadyRegistered
			}
			return err
		}
		rec := ac.Record(ActionRegister, audit.Success, audit.TargetStock, fmt.Sprint(st.ID))
		rec.WxRequestID = meta.RequestID
		rec.Detail = map[string]any{"kind": st.Kind, "stock_id": st.StockID, "product_coupon_id": st.ProductCouponID,
			"state": st.State, "bundles": in.BundleIDs, "demo": in.Demo}
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("register stock %s: %w", target, err)
	}
	return st, nil
}

func targetName(kind models.StockKind, pcid, stockID string) string {
	if pcid != "" {
		return string(kind) + ":" + pcid + "/" + stockID
	}
	return string(kind) + ":" + stockID
}

// auditFailure records a failed action in its own transaction; the error's
// WeChat Pay code and Request-ID are kept.
func (s *Service) auditFailure(ctx context.Context, ac audit.Context, action, target string, cause error, detail map[string]any) {
	targetType, targetID := audit.TargetStock, target
	rec := ac.Record(action, audit.Failure, targetType, targetID)
	var ae *wxpay.APIError
	if errors.As(cause, &ae) {
		rec.WxErrorCode, rec.WxRequestID = ae.Code, ae.RequestID
	} else {
		rec.WxErrorCode = "NETWORK"
		if errors.Is(cause, ErrInvalidID) || errors.Is(cause, ErrNotFound) {
			rec.WxErrorCode = ""
		}
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["error"] = errorSummary(cause)
	rec.Detail = detail
	_, _ = audit.Append(ctx, s.DB, s.Now.UTC(), rec)
}

// errorSummary is a short description of an error for audit detail: WeChat
// Pay's code and message, never internal text that could hold secrets.
func errorSummary(err error) string {
	var ae *wxpay.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s: %s", ae.StatusCode, ae.Code, ae.Message)
	}
	var te *wxpay.TransportError
	if errors.As(err, &te) {
		return "transport error talking to " + te.Host
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "error"
}

// readInto reads the stock from WeChat Pay and copies what the console shows.
func (s *Service) readInto(ctx context.Context, st *models.Stock) (wxpay.Meta, error) {
	now := s.Now.UTC()
	switch st.Kind {
	case models.KindProductCoupon:
		r, err := s.WX.GetProductCouponStock(ctx, st.ProductCouponID, st.StockID)
		if err != nil {
			return wxpay.Meta{}, err
		}
		applyProductCoupon(st, r)
		st.RefreshedAt = &now
		return r.Meta, nil
	case models.KindBusifavor:
		r, err := s.WX.GetBusifavorStock(ctx, st.StockID)
		if err != nil {
			return wxpay.Meta{}, err
		}
		applyBusifavor(st, r)
		st.RefreshedAt = &now
		return r.Meta, nil
	case models.KindFavor:
		r, err := s.WX.GetFavorStock(ctx, st.StockID)
		if err != nil {
			return wxpay.Meta{}, err
		}
		applyFavor(st, r)
		st.RefreshedAt = &now
		return r.Meta, nil
	}
	return wxpay.Meta{}, fmt.Errorf("unknown stock kind %q", st.Kind)
}

func ptr(v int64) *int64 { return &v }

// ApplyProductCoupon copies a product-coupon stock entity (read back, or as
// deactivation returns it) onto the record.
func ApplyProductCoupon(st *models.Stock, r *wxpay.ProductCouponStock) { applyProductCoupon(st, r) }

func applyProductCoupon(st *models.Stock, r *wxpay.ProductCouponStock) {
	if st.Name == "" {
		st.Name = r.Remark
	}
	st.WxState = string(r.State)
	st.State = NormalizeState(models.KindProductCoupon, string(r.State))
	st.CouponCodeMode = string(r.CouponCodeMode)
	if c := r.CouponCodeCountInfo; c != nil {
		st.TotalCount, st.AvailableCount = ptr(c.TotalCount), ptr(c.AvailableCount)
	}
	st.SentCount = ptr(r.SentCountInfo.TotalCount)
	st.MaxCoupons = ptr(r.StockSendRule.MaxCount)
	st.MaxCouponsPerUser = ptr(r.StockSendRule.MaxCountPerUser)
	period := wxpay.CouponAvailablePeriod{}
	switch {
	case r.SingleUsageRule != nil:
		period = r.SingleUsageRule.CouponAvailablePeriod
	case r.SequentialUsageRule != nil:
		period = r.SequentialUsageRule.CouponAvailablePeriod
	}
	st.AvailableBeginTime, st.AvailableEndTime = period.AvailableBeginTime, period.AvailableEndTime
	st.DeactivateTime, st.DeactivateReason, st.DeactivateRequestNo = r.DeactivateTime, r.DeactivateReason, r.DeactivateRequestNo
	st.Raw = rawOf(r.Raw, r)
}

func applyBusifavor(st *models.Stock, r *wxpay.BusifavorStock) {
	st.Name = r.StockName
	st.WxState = r.StockState
	st.State = NormalizeState(models.KindBusifavor, r.StockState)
	st.CouponCodeMode = r.CouponCodeMode
	if c := r.CouponCodeCount; c != nil {
		st.TotalCount, st.AvailableCount = ptr(c.TotalCount), ptr(c.AvailableCount)
	}
	if sr := r.StockSendRule; sr != nil {
		st.MaxCoupons, st.MaxCouponsPerUser = ptr(sr.MaxCoupons), ptr(sr.MaxCouponsPerUser)
	}
	if sc := r.SendCountInfo; sc != nil {
		st.SentCount = ptr(sc.TotalSendNum)
	}
	if ur := r.CouponUseRule; ur != nil {
		b, _ := json.Marshal(ur)
		var period struct {
			CouponAvailableTime struct {
				AvailableBeginTime string `json:"available_begin_time"`
				AvailableEndTime   string `json:"available_end_time"`
			} `json:"coupon_available_time"`
		}
		if json.Unmarshal(b, &period) == nil {
			st.AvailableBeginTime = period.CouponAvailableTime.AvailableBeginTime
			st.AvailableEndTime = period.CouponAvailableTime.AvailableEndTime
		}
	}
	st.Raw = rawOf(r.Raw, r)
}

func applyFavor(st *models.Stock, r *wxpay.FavorStock) {
	st.Name = r.StockName
	st.WxState = string(r.Status)
	st.State = NormalizeState(models.KindFavor, string(r.Status))
	st.WxCreateTime = r.CreateTime
	st.AvailableBeginTime, st.AvailableEndTime = r.AvailableBeginTime, r.AvailableEndTime
	st.SentCount = ptr(r.DistributedCoupons)
	if rule := r.StockUseRule; rule != nil {
		st.MaxCoupons, st.MaxCouponsPerUser = ptr(rule.MaxCoupons), ptr(rule.MaxCouponsPerUser)
	}
	st.Raw = rawOf(r.Raw, r)
}

func rawOf(raw json.RawMessage, v any) string {
	if len(raw) > 0 {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Get loads a stock with its bundles.
func (s *Service) Get(ctx context.Context, id int64) (*models.Stock, error) {
	var st models.Stock
	err := s.DB.WithContext(ctx).Preload("Bundles").Take(&st, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &st, err
}

// Refresh reads a stock back from WeChat Pay and stores what it says.
func (s *Service) Refresh(ctx context.Context, ac audit.Context, id int64) (*models.Stock, error) {
	st, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	meta, err := s.readInto(ctx, st)
	if err != nil {
		s.auditFailure(ctx, ac, ActionRefresh, fmt.Sprint(id), err, nil)
		return nil, err
	}
	st.RefreshedBy = ac.Actor
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Omit("Bundles", "LowStockThreshold").Save(st).Error; err != nil {
			return err
		}
		rec := ac.Record(ActionRefresh, audit.Success, audit.TargetStock, fmt.Sprint(id))
		rec.WxRequestID = meta.RequestID
		rec.Detail = map[string]any{"state": st.State, "total_count": st.TotalCount, "available_count": st.AvailableCount}
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("refresh stock %d: %w", id, err)
	}
	return st, nil
}

// ListQuery filters and pages the stock list.
type ListQuery struct {
	Q     string // stock ID or product coupon ID prefix, or part of the name
	Kind  models.StockKind
	State models.StockState
	After int64 // keyset: show stocks with id < After (newest first); 0 = first page
	Limit int
}

// List returns a page of stocks, newest first, and the keyset cursor of the
// next page (0 when there is none).
func (s *Service) List(ctx context.Context, q ListQuery) ([]models.Stock, int64, error) {
	if q.Limit <= 0 || q.Limit > 200 {
		q.Limit = 50
	}
	search := s.Search
	if search == nil {
		search = s.DB
	}
	// matching is the stocks that pass the filters and one search condition.
	matching := func(cond string, args ...any) *gorm.DB {
		db := search.WithContext(ctx).Model(&models.Stock{}).Select(listColumns)
		if cond != "" {
			db = db.Where(cond, args...)
		}
		if q.Kind != "" {
			db = db.Where("kind = ?", q.Kind)
		}
		if q.State != "" {
			db = db.Where("state = ?", q.State)
		}
		if q.After > 0 {
			db = db.Where("id < ?", q.After)
		}
		return db
	}
	db := matching("")
	if term := normalizeSearch(q.Q); term != "" {
		contains := "%" + escapeLike(term) + "%"
		nameLike := `name LIKE ? ESCAPE '\'` // SQLite's LIKE ignores ASCII case
		if search.Dialector.Name() == "postgres" {
			nameLike = `name ILIKE ? ESCAPE '\'` // the trigram index serves ILIKE too
		}
		// IDs have no spaces: "1000 0000 1001" is a stock ID typed in groups.
		if id := strings.ReplaceAll(term, " ", ""); idPattern.MatchString(id) {
			term = id
			// Could be an ID prefix or part of a name. A union of the three
			// searches lets each use its own index (prefix indexes on the
			// IDs, a trigram index on the name); an OR, a join or an IN
			// makes the planner walk the whole table in id order.
			prefix := escapeLike(term) + "%"
			db = search.WithContext(ctx).Table("(? UNION ? UNION ?) AS stocks",
				matching(`stock_id LIKE ? ESCAPE '\'`, prefix),
				matching(`product_coupon_id LIKE ? ESCAPE '\'`, prefix),
				matching(nameLike, contains))
		} else {
			db = matching(nameLike, contains)
		}
	}
	var out []models.Stock
	if err := db.Order("id DESC").Limit(q.Limit + 1).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list stocks: %w", err)
	}
	var next int64
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// listColumns are what the stock list shows.
const listColumns = "id, kind, stock_id, product_coupon_id, name, state, wx_state, coupon_code_mode, " +
	"total_count, available_count, sent_count, demo, refreshed_at"

// normalizeSearch forgives how a search was typed: full-width letters,
// digits and spaces (a Chinese input method's) become ASCII, and runs of
// spaces one.
func normalizeSearch(s string) string {
	return strings.Join(strings.Fields(width.Narrow.String(s)), " ")
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// History is the stock's own audit trail, newest first, at most limit
// entries.
func (s *Service) History(ctx context.Context, id int64, limit int) ([]audit.Entry, error) {
	var entries []audit.Entry
	err := s.DB.WithContext(ctx).
		Where("target_type = ? AND target_id = ?", audit.TargetStock, strconv.FormatInt(id, 10)).
		Order("seq DESC").Limit(limit).Find(&entries).Error
	if err != nil {
		return nil, fmt.Errorf("stock history: %w", err)
	}
	return entries, nil
}

// Windows are when, within its validity period, a merchant (busifavor)
// stock's coupons may be used: on some week days at some times of day
// (coupon_available_time.available_week), and irregular extra windows
// (irregulary_avaliable_time).
type Windows struct {
	WeekDays  []int64                     // 0 Sunday … 6 Saturday
	DayTimes  []wxpay.BusifavorDayRange   // seconds since midnight, on those days
	Irregular []wxpay.BusifavorTimeWindow // RFC 3339
}

// AvailabilityWindows reads a merchant stock's windows from the reply kept
// with it; ok is false when it has none (coupons work throughout).
func AvailabilityWindows(st *models.Stock) (w Windows, ok bool) {
	if st.Kind != models.KindBusifavor || st.Raw == "" {
		return w, false
	}
	var r wxpay.BusifavorStock
	if json.Unmarshal([]byte(st.Raw), &r) != nil || r.CouponUseRule == nil || r.CouponUseRule.CouponAvailableTime == nil {
		return w, false
	}
	t := r.CouponUseRule.CouponAvailableTime
	if t.AvailableWeek != nil {
		w.WeekDays, w.DayTimes = t.AvailableWeek.WeekDay, t.AvailableWeek.AvailableDayTime
	}
	w.Irregular = t.IrregularyAvaliableTime
	return w, len(w.WeekDays) > 0 || len(w.DayTimes) > 0 || len(w.Irregular) > 0
}
