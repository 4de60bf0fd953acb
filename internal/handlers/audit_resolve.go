package handlers

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/web/templates"
)

// systemActors are actors that are not users: the background jobs and the
// command line. The user filter offers them too.
var systemActors = []string{stocks.SystemActor, "console (demo data)"}

// resolveAuditFilter turns what a person typed into what the log stores:
// an action label (in any supported language) into its action, a username
// prefix (any case) into the usernames it matches, and a search that names
// stocks by WeChat ID or name into those stocks' entries too.
func (s *Server) resolveAuditFilter(c *gin.Context, r *auditRequest) error {
	ctx := c.Request.Context()
	if a := r.filter.Action; a != "" {
		r.filter.Action = s.actionFromLabel(a)
	}
	if prefix := strings.ToLower(r.filter.Actor); prefix != "" {
		var names []string
		if err := s.DB.Gorm.WithContext(ctx).Model(&models.User{}).Where("username LIKE ? ESCAPE '\\'", escapeLikePrefix(prefix)+"%").
			Order("username").Limit(200).Pluck("username", &names).Error; err != nil {
			return fmt.Errorf("audit user filter: %w", err)
		}
		for _, a := range systemActors {
			if strings.HasPrefix(strings.ToLower(a), prefix) {
				names = append(names, a)
			}
		}
		// What was typed, exactly, too: an actor that is neither a user
		// nor a known system actor ("console user add (root)").
		r.filter.Actors = append(names, r.filter.Actor)
	}
	if q := strings.TrimSpace(r.filter.Search); q != "" && s.Stocks != nil {
		ids, err := s.Stocks.MatchIDs(ctx, q, 200)
		if err != nil {
			return err
		}
		for _, id := range ids {
			r.filter.SearchStocks = append(r.filter.SearchStocks, strconv.FormatInt(id, 10))
		}
	}
	return nil
}

func escapeLikePrefix(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// actionFromLabel maps a typed action label, in either language and any
// case, to its action; anything else is kept as typed.
func (s *Server) actionFromLabel(typed string) string {
	for _, l := range i18n.Locales {
		t := s.Catalog.For(l)
		for _, id := range s.Catalog.IDs(l) {
			if a, ok := strings.CutPrefix(id, auditActionPrefix); ok && (a == typed || strings.EqualFold(t.T(id), typed)) {
				return a
			}
		}
	}
	return typed
}

// entryContext is what the entries of one page need from elsewhere: the
// stocks they name, and the other half of each operation (an intent and
// its outcome share a WeChat Pay request number).
type entryContext struct {
	stocks map[int64]stocks.Brief
	ops    map[string][]audit.Entry // request number → its entries, oldest first
}

func (s *Server) entryContext(c *gin.Context, es []audit.Entry) (*entryContext, error) {
	ctx := c.Request.Context()
	var ids []int64
	var nos []string
	for i := range es {
		if es[i].TargetType == audit.TargetStock {
			if id, err := strconv.ParseInt(es[i].TargetID, 10, 64); err == nil && id > 0 {
				ids = append(ids, id)
			}
		}
		if es[i].WxRequestNo != "" {
			nos = append(nos, es[i].WxRequestNo)
		}
	}
	out := &entryContext{ops: map[string][]audit.Entry{}}
	var err error
	if s.Stocks != nil {
		if out.stocks, err = s.Stocks.Briefs(ctx, ids); err != nil {
			return nil, err
		}
	}
	if len(nos) > 0 {
		slices.Sort(nos)
		nos = slices.Compact(nos)
		var related []audit.Entry
		if err := s.DB.Gorm.WithContext(ctx).Select("seq, occurred_at, outcome, wx_request_no, action").
			Where("wx_request_no IN ?", nos).Order("seq").Limit(4 * len(nos)).Find(&related).Error; err != nil {
			return nil, fmt.Errorf("audit operations: %w", err)
		}
		for _, e := range related {
			out.ops[e.WxRequestNo] = append(out.ops[e.WxRequestNo], e)
		}
	}
	return out, nil
}

// apply names the entry's stock and ties its operation together.
func (x *entryContext) apply(t i18n.Localizer, v *templates.AuditEntryView, e *audit.Entry, loc *time.Location) {
	if e.TargetType == audit.TargetStock {
		id, _ := strconv.ParseInt(e.TargetID, 10, 64)
		if b, ok := x.stocks[id]; ok {
			v.TargetLink = "/stocks/" + e.TargetID
			name := b.Name
			if name == "" {
				name = t.T("stocks.unnamed", b.StockID)
			}
			v.TargetName = name
			v.TargetWxID = b.StockID
			if b.ProductCouponID != "" {
				v.TargetWxID = b.ProductCouponID + " / " + b.StockID
			}
		}
	}
	if e.WxRequestNo == "" {
		return
	}
	when := func(o audit.Entry) string { return o.OccurredAt.In(loc).Format("2006-01-02 15:04:05") }
	ref := func(o audit.Entry) string {
		return "/audit?" + url.Values{qAt: {strconv.FormatInt(o.Seq, 10)}, qOpen: {strconv.FormatInt(o.Seq, 10)}}.Encode() +
			"#entry-" + strconv.FormatInt(o.Seq, 10)
	}
	for _, o := range x.ops[e.WxRequestNo] {
		if o.Seq == e.Seq || o.Action != e.Action {
			continue
		}
		switch {
		case e.Outcome == audit.Pending && o.Outcome != audit.Pending && o.Seq > e.Seq:
			v.Operation = t.T("audit.op.intent_of", o.Seq, t.T("audit.outcome."+string(o.Outcome)))
			v.OperationLink = ref(o)
			v.IntentDone = true
			return
		case e.Outcome != audit.Pending && o.Outcome == audit.Pending && o.Seq < e.Seq:
			v.Operation = t.T("audit.op.outcome_of", o.Seq, when(o))
			v.OperationLink = ref(o)
		}
	}
	if e.Outcome == audit.Pending && v.Operation == "" {
		v.Operation = t.T("audit.op.no_outcome")
	}
}
