package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Outcomes lists every outcome, in display order.
var Outcomes = []Outcome{Success, Failure, Denied, Pending}

// TargetTypes lists the target types an entry may name, in display order.
var TargetTypes = []string{TargetStock, TargetUpload, TargetUser, TargetRoute}

// Filter selects audit entries. A zero field does not filter.
type Filter struct {
	Actor      string    // username, exactly
	Action     string    // action name, exactly
	TargetType string    // one of TargetTypes
	TargetID   string    // exactly
	Outcome    Outcome   // one of Outcomes
	From       time.Time // occurred at or after
	To         time.Time // occurred before
	Search     string    // substring of the target ID or the WeChat request number, any case
	// Actors, when set, selects entries by any of these actors (the
	// usernames a typed prefix matches); it supersedes Actor.
	Actors []string
	// SearchStocks widens Search to entries about these stocks (their
	// console IDs: the stocks whose WeChat IDs or name match the search).
	SearchStocks []string
}

// IsZero reports whether f selects every entry.
func (f Filter) IsZero() bool {
	return f.Actor == "" && f.Action == "" && f.TargetType == "" && f.TargetID == "" && f.Outcome == "" &&
		f.From.IsZero() && f.To.IsZero() && f.Search == "" && len(f.Actors) == 0 && len(f.SearchStocks) == 0
}

// Detail describes the filter for an audit entry (the export records what it
// exported).
func (f Filter) Detail() map[string]any {
	d := map[string]any{}
	add := func(k, v string) {
		if v != "" {
			d[k] = v
		}
	}
	add("actor", f.Actor)
	add("action", f.Action)
	add("target_type", f.TargetType)
	add("target_id", f.TargetID)
	add("outcome", string(f.Outcome))
	add("search", f.Search)
	if !f.From.IsZero() {
		d["from"] = f.From.UTC().Format(time.RFC3339)
	}
	if !f.To.IsZero() {
		d["to"] = f.To.UTC().Format(time.RFC3339)
	}
	return d
}

// Validate reports the first field whose value cannot select anything
// meaningful (an unknown outcome or target type, an empty time range).
func (f Filter) Validate() error {
	if f.Outcome != "" && !slices.Contains(Outcomes, f.Outcome) {
		return fmt.Errorf("audit filter: unknown outcome %q", f.Outcome)
	}
	if f.TargetType != "" && !slices.Contains(TargetTypes, f.TargetType) {
		return fmt.Errorf("audit filter: unknown target type %q", f.TargetType)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return fmt.Errorf("audit filter: time range ends before it starts")
	}
	return nil
}

// likeEscaper escapes LIKE wildcards so a search term matches literally.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// apply adds f's conditions to q. Each equality filter has an index that
// continues with (occurred_at, seq) — (actor, …), (action, …), (target_type,
// target_id, …), (outcome, …) — and the time range is a range of it, so a
// filtered page is read in order from one index; on PostgreSQL the search
// uses trigram indexes on target_id and wx_request_no.
func (f Filter) apply(q *gorm.DB) *gorm.DB {
	switch {
	case len(f.Actors) > 0:
		q = q.Where("actor IN ?", f.Actors)
	case f.Actor != "":
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.TargetType != "" {
		q = q.Where("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		q = q.Where("target_id = ?", f.TargetID)
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", string(f.Outcome))
	}
	if !f.From.IsZero() {
		q = q.Where("occurred_at >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		q = q.Where("occurred_at < ?", f.To.UTC())
	}
	if s := strings.TrimSpace(f.Search); s != "" {
		like := "LIKE" // SQLite's LIKE ignores ASCII case
		if q.Dialector.Name() == "postgres" {
			like = "ILIKE"
		}
		pattern := "%" + likeEscaper.Replace(s) + "%"
		if len(f.SearchStocks) > 0 {
			q = q.Where(fmt.Sprintf(`(target_id %[1]s ? ESCAPE '\' OR wx_request_no %[1]s ? ESCAPE '\' OR (target_type = ? AND target_id IN ?))`, like),
				pattern, pattern, TargetStock, f.SearchStocks)
		} else {
			q = q.Where(fmt.Sprintf(`(target_id %[1]s ? ESCAPE '\' OR wx_request_no %[1]s ? ESCAPE '\')`, like), pattern, pattern)
		}
	}
	return q
}

// Cursor positions a page of newest-first entries relative to an entry,
// named by its sequence number: entries older than Before, entries from At
// on (At itself included) and older, or entries newer than After. The zero
// Cursor is the newest page.
type Cursor struct {
	Before int64
	At     int64
	After  int64
}

// Page is one page of entries, newest first.
type Page struct {
	Entries []Entry
	// Older is the cursor (Before) of the next older page, 0 when there is
	// none; Newer that (After) of the next newer page, 0 when there is none.
	Older int64
	Newer int64
}

// MaxPageSize bounds a page.
const MaxPageSize = 500

// position is a place in the log's order: newest first by time, then by
// sequence number among entries of the same microsecond.
type position struct {
	at  time.Time
	seq int64
}

func positionOf(e *Entry) position { return position{at: e.OccurredAt.UTC(), seq: e.Seq} }

// List returns one page of the entries f selects, newest first (by time,
// then sequence number), by keyset pagination on (occurred_at, seq): every
// filter has an index ending in (occurred_at, seq), so a page — the newest,
// one 10,000 entries deep, or one inside a time range far back — is one
// index range walked from its cursor, never counting or skipping the
// entries before it. A cursor naming no entry gives an empty page.
func List(ctx context.Context, db *gorm.DB, f Filter, cur Cursor, size int) (Page, error) {
	if size <= 0 || size > MaxPageSize {
		size = MaxPageSize
	}
	ref, op := cur.Before, "<"
	switch {
	case cur.After > 0:
		ref, op = cur.After, ">"
	case cur.At > 0:
		ref, op = cur.At, "<="
	}
	var from *position
	if ref > 0 {
		var e Entry
		err := db.WithContext(ctx).Select("seq", "occurred_at").Where("seq = ?", ref).Take(&e).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Page{}, nil
		}
		if err != nil {
			return Page{}, fmt.Errorf("audit list: %w", err)
		}
		pos := positionOf(&e)
		from = &pos
	}
	var p Page
	if op == ">" {
		// Walk up from the cursor, then show the page newest first.
		es, err := list(ctx, db, f, from, op, 0, size+1)
		if err != nil {
			return p, err
		}
		more := len(es) > size
		if more {
			es = es[:size]
		}
		slices.Reverse(es)
		p.Entries = es
		if len(es) > 0 {
			p.Older = es[len(es)-1].Seq
			if more {
				p.Newer = es[0].Seq
			}
		}
		return p, nil
	}
	es, err := list(ctx, db, f, from, op, 0, size+1)
	if err != nil {
		return p, err
	}
	if len(es) > size {
		es = es[:size]
		p.Older = es[size-1].Seq
	}
	p.Entries = es
	if from != nil && len(es) > 0 {
		p.Newer = es[0].Seq
	}
	return p, nil
}

// list reads up to limit entries f selects relative to from (nil: from the
// newest): older than it (op "<", or "<=" to include it), newest first, or
// newer than it (op ">"), oldest first. through > 0 leaves out entries with a
// higher sequence number.
func list(ctx context.Context, db *gorm.DB, f Filter, from *position, op string, through int64, limit int) ([]Entry, error) {
	q := f.apply(db.WithContext(ctx).Model(&Entry{}))
	if from != nil {
		q = q.Where("(occurred_at, seq) "+op+" (?, ?)", from.at, from.seq)
	}
	if through > 0 {
		q = q.Where("seq <= ?", through)
	}
	dir := "DESC"
	if op == ">" {
		dir = "ASC"
	}
	var es []Entry
	if err := q.Order("occurred_at " + dir + ", seq " + dir).Limit(limit).Find(&es).Error; err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	return es, nil
}

// LastSeq returns the newest entry's sequence number, 0 for an empty log.
func LastSeq(ctx context.Context, db *gorm.DB) (int64, error) {
	var seq *int64
	if err := db.WithContext(ctx).Model(&Entry{}).Select("MAX(seq)").Scan(&seq).Error; err != nil {
		return 0, err
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}

// Actions returns the distinct actions in the log, sorted. It skips through
// the (action, seq) index one action at a time, so it costs one index probe
// per distinct action however long the log is.
func Actions(ctx context.Context, db *gorm.DB) ([]string, error) {
	var out []string
	err := db.WithContext(ctx).Raw(`WITH RECURSIVE acts(action) AS (
    SELECT MIN(action) FROM audit_entries
    UNION ALL
    SELECT (SELECT e.action FROM audit_entries e WHERE e.action > acts.action ORDER BY e.action LIMIT 1)
    FROM acts WHERE acts.action IS NOT NULL
)
SELECT action FROM acts WHERE action IS NOT NULL`).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("audit actions: %w", err)
	}
	return out, nil
}
