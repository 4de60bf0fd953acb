package presend_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

var (
	keysOnce sync.Once
	keys     *sandbox.Keys
	keysErr  error
)

type env struct {
	t     *testing.T
	db    *database.DB
	sb    *sandbox.Sandbox
	clock *sandbox.Clock
	svc   *presend.Service
}

// newEnv: a seeded sandbox, a client for it, a migrated database with the
// sandbox's product-coupon stocks and bundles registered, and the service.
func newEnv(t *testing.T, db *database.DB) *env {
	t.Helper()
	keysOnce.Do(func() { keys, keysErr = sandbox.GenerateKeys() })
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	clk := &sandbox.Clock{} // the wall clock, advanced by tests
	sb, err := sandbox.New(sandbox.Options{Clock: clk, Seed: true, Keys: keys, Rand: rand.New(rand.NewPCG(3, 4))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { srv.Close(); sb.Close() })
	cr := sb.Credentials()
	wx, err := wxpay.NewClient(wxpay.Config{
		BaseURL: srv.URL, BrandID: cr.BrandID, BrandSerial: cr.BrandSerial, BrandKey: cr.BrandKey,
		MchPubKeyID: cr.MchPubKeyID, MchPubKey: cr.MchPubKey, SPPubKeyID: cr.SPPubKeyID, SPPubKey: cr.SPPubKey,
		BrandPubKeyID: cr.BrandPubKeyID, BrandPubKey: cr.BrandPubKey, Now: clk.Now,
		MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := presend.NewKeys([]byte(strings.Repeat("session-secret-", 3)))
	if err != nil {
		t.Fatal(err)
	}
	bundles := map[string][]string{}
	for _, b := range sb.Bundles() {
		for _, sid := range b.StockIDs {
			bundles[sid] = append(bundles[sid], b.StockBundleID)
		}
	}
	reg := &stocks.Service{DB: db.Gorm, WX: wx, Now: clk.Now}
	for _, info := range sb.Stocks() {
		if info.Kind != sandbox.KindProductCoupon {
			continue
		}
		if _, err := reg.Register(context.Background(), audit.Context{Actor: "test"}, stocks.RegisterInput{
			Kind: models.KindProductCoupon, ProductCouponID: info.ProductCouponID, StockID: info.StockID, BundleIDs: bundles[info.StockID],
		}); err != nil {
			t.Fatal(err)
		}
	}
	svc := &presend.Service{DB: db.Gorm, WX: wx, Keys: k, Now: clk.Now}
	return &env{t: t, db: db, sb: sb, clock: clk, svc: svc}
}

var ac = audit.Context{Actor: "olivia", Roles: []string{"operator"}}

func input(bundle, openid, form string) presend.Input {
	return presend.Input{ProductCouponID: sandbox.SeedBundleCoupon, StockBundleID: bundle, AppID: sandbox.DemoAppID,
		OpenID: openid, Attach: "门店活动", FormToken: form}
}

// openID makes a well-formed OpenID unique to the test.
func openID(i int) string { return fmt.Sprintf("oTestUser%02dX7pQm2LrN8vK4sJ", i) }

func (e *env) requests() []sandbox.RequestInfo {
	var out []sandbox.RequestInfo
	for _, r := range e.sb.Requests() {
		if r.Endpoint == sandbox.EndpointPreSendCouponBundle {
			out = append(out, r)
		}
	}
	return out
}

// rowsContaining lists the rows of the console's tables in which s occurs
// in any column, as "table: row".
func (e *env) rowsContaining(s string) []string {
	e.t.Helper()
	var hits []string
	for _, table := range []string{"presend_tokens", "wx_operations", "audit_entries", "stocks", "stock_bundles"} {
		var rows []map[string]any
		if err := e.db.Gorm.Table(table).Find(&rows).Error; err != nil {
			e.t.Fatal(err)
		}
		for _, r := range rows {
			if line := fmt.Sprint(r); strings.Contains(line, s) {
				hits = append(hits, table+": "+line)
			}
		}
	}
	return hits
}

func (e *env) entries() []audit.Entry {
	var out []audit.Entry
	if err := e.db.Gorm.Where("action = ?", presend.ActionIssue).Order("seq").Find(&out).Error; err != nil {
		e.t.Fatal(err)
	}
	return out
}

// A token is issued, valid five minutes; the database keeps the OpenID's
// hash and masked form, never the OpenID; the audit shows the intent and the
// outcome with the masked form.
func TestIssue(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		id := openID(1)
		tok, err := e.svc.Issue(ctx, ac, input(sandbox.SeedBundleMemberDay, "  "+id+" ", "form-1"))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Status != presend.StatusIssued || tok.Token == "" || tok.OpenIDMasked != "oTes…K4sJ" || tok.OpenIDSealed != "" {
			t.Fatalf("token %+v", tok)
		}
		if got := tok.ExpiresAt.Sub(tok.CreatedAt); got != presend.TokenTTL {
			t.Fatalf("valid for %s", got)
		}
		info, ok := e.sb.Token(tok.Token)
		if !ok || !info.Valid || info.OpenID != id || info.SendRequestNo != tok.SendRequestNo || info.Attach != "门店活动" {
			t.Fatalf("sandbox token %+v", info)
		}
		if hits := e.rowsContaining(id); len(hits) > 0 {
			t.Fatalf("the OpenID is stored:\n%s", strings.Join(hits, "\n"))
		}
		stored, err := e.svc.Get(ctx, tok.ID)
		if err != nil || stored.OpenIDHash != e.svc.Keys.Hash(id) || stored.Token != tok.Token {
			t.Fatalf("stored %+v, %v", stored, err)
		}
		entries := e.entries()
		if len(entries) != 2 || entries[0].Outcome != audit.Pending || entries[1].Outcome != audit.Success ||
			entries[1].WxRequestNo != tok.SendRequestNo || !strings.Contains(entries[1].Detail, presend.Mask(id)) {
			t.Fatalf("audit entries %+v", entries)
		}
		if !tok.Expired(tok.ExpiresAt.Add(0)) || tok.Expired(tok.ExpiresAt.Add(-time.Second)) || tok.Remaining(*tok.ExpiresAt) != 0 {
			t.Fatal("expiry arithmetic")
		}

		// The stock pages list it: both stocks of the bundle.
		var st models.Stock
		db.Gorm.Preload("Bundles").Where("stock_id = ?", sandbox.SeedBundleStockLarge).Take(&st)
		list, err := e.svc.ForStock(ctx, &st, 10)
		if err != nil || len(list) != 1 || list[0].ID != tok.ID {
			t.Fatalf("ForStock: %+v %v", list, err)
		}
		var other models.Stock
		db.Gorm.Preload("Bundles").Where("stock_id = ?", sandbox.SeedBundleStockLimited).Take(&other)
		if list, _ := e.svc.ForStock(ctx, &other, 10); len(list) != 0 {
			t.Fatalf("another bundle's stock lists %+v", list)
		}
		if list, _ := e.svc.Recent(ctx, 10); len(list) != 1 {
			t.Fatalf("Recent: %+v", list)
		}
	})
}

// WeChat Pay's refusals come back with code, message and Request-ID, end the
// operation and wipe the sealed OpenID; a 429 leaves it pending, and the
// same form sends the same request again.
func TestRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		// The limited bundle runs out after three sends.
		for i := range 3 {
			if _, err := e.svc.Issue(ctx, ac, input(sandbox.SeedBundleLimited, openID(10+i), fmt.Sprint("limited-", i))); err != nil {
				t.Fatal(err)
			}
		}
		// The member-day bundle's large stock allows one per user.
		if _, err := e.svc.Issue(ctx, ac, input(sandbox.SeedBundleMemberDay, openID(1), "first")); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			in      presend.Input
			reason  string
			message string
		}{
			{"budget exhausted", input(sandbox.SeedBundleLimited, openID(20), "limited-4"), "MAX_COUNT_REACHED", "发放总上限"},
			{"per-user limit", input(sandbox.SeedBundleMemberDay, openID(1), "second"), "MAX_COUNT_PER_USER_REACHED", "每人限领"},
			{"stock paused", input(sandbox.SeedBundlePaused, openID(2), "paused"), "STOCK_NOT_SENDING", "PAUSED"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tok, err := e.svc.Issue(ctx, ac, tc.in)
				var ae *wxpay.APIError
				if !errors.As(err, &ae) || ae.Code != "INVALID_REQUEST" || !strings.Contains(ae.Message, tc.message) ||
					!strings.Contains(string(ae.Detail), tc.reason) || ae.RequestID == "" {
					t.Fatalf("err %v", err)
				}
				if tok.Status != presend.StatusFailed || tok.OpenIDSealed != "" || tok.WxErrorCode != "INVALID_REQUEST" || tok.WxRequestID != ae.RequestID {
					t.Fatalf("token %+v", tok)
				}
				// The form token is free again: a corrected form is a new request.
				if again, err := e.svc.Repost(ctx, ac, tc.in.FormToken); again != nil || err != nil {
					t.Fatalf("repost of a refused form: %+v %v", again, err)
				}
			})
		}

		_ = e.sb.SetFaults(sandbox.Faults{ThrottleRate: 1})
		tok, err := e.svc.Issue(ctx, ac, input(sandbox.SeedBundleMemberDay, openID(3), "busy"))
		var ae *wxpay.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 429 || tok.Status != presend.StatusPending || tok.OpenIDSealed == "" {
			t.Fatalf("429: %v, %+v", err, tok)
		}
		_ = e.sb.SetFaults(sandbox.Faults{})
		again, err := e.svc.Repost(ctx, ac, "busy")
		if err != nil || again.ID != tok.ID || again.Status != presend.StatusIssued || again.OpenIDSealed != "" {
			t.Fatalf("resend after 429: %+v %v", again, err)
		}
		for _, r := range e.requests() {
			// Two attempts of the client's (both 429), then the resend.
			if r.RequestNo == tok.SendRequestNo && (r.Count != 3 || !r.Identical) {
				t.Fatalf("request %+v: want sent three times, identically", r)
			}
		}
		if hits := e.rowsContaining(openID(1)); len(hits) > 0 {
			t.Fatalf("the OpenID is stored:\n%s", strings.Join(hits, "\n"))
		}
	})
}

// The same form posted twice is one request and one token.
func TestDoubleSubmit(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := context.Background()
	in := input(sandbox.SeedBundleMemberDay, openID(4), "same-form")
	first, err := e.svc.Issue(ctx, ac, in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.svc.Issue(ctx, ac, in)
	if err != nil || second.ID != first.ID || second.Token != first.Token {
		t.Fatalf("second submit: %+v %v", second, err)
	}
	if reqs := e.requests(); len(reqs) != 1 || reqs[0].Count != 1 {
		t.Fatalf("requests %+v", reqs)
	}
}

// The same form posted by several requests at once is still one operation
// and one request: the others find it recorded, in flight or done.
func TestConcurrentSubmit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		in := input(sandbox.SeedBundleMemberDay, openID(6), "raced-form")
		const posts = 6
		toks := make([]*presend.Token, posts)
		errs := make([]error, posts)
		var wg sync.WaitGroup
		for i := range posts {
			wg.Go(func() { toks[i], errs[i] = e.svc.Issue(ctx, ac, in) })
		}
		wg.Wait()
		for i := range posts {
			if errs[i] != nil && !errors.Is(errs[i], presend.ErrInFlight) || toks[i] == nil || toks[i].ID != toks[0].ID {
				t.Fatalf("post %d: %+v %v", i, toks[i], errs[i])
			}
		}
		if reqs := e.requests(); len(reqs) != 1 || reqs[0].Count != 1 {
			t.Fatalf("requests %+v", reqs)
		}
		var ops int64
		if err := db.Gorm.Model(&models.WxOperation{}).Where("form_token = ?", in.FormToken).Count(&ops).Error; err != nil || ops != 1 {
			t.Fatalf("%d operations for the form (%v)", ops, err)
		}
	})
}

func TestUnknownBundle(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	_, err := e.svc.Issue(context.Background(), ac, input("999999", openID(5), "x"))
	if !errors.Is(err, presend.ErrUnknownBundle) || len(e.requests()) != 0 {
		t.Fatalf("err %v", err)
	}
}

type crash struct{}

// A crash right after the intent leaves the operation pending with the
// OpenID sealed; Resume resends it with the same request number, records the
// token and wipes the sealed OpenID.
func TestResumeAfterCrash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		id := openID(6)
		e.svc.AfterIntent = func() { panic(crash{}) }
		func() {
			defer func() { recover() }()
			_, _ = e.svc.Issue(ctx, ac, input(sandbox.SeedBundleMemberDay, id, "crash"))
		}()
		e.svc.AfterIntent = nil
		var pending presend.Token
		if err := db.Gorm.Take(&pending).Error; err != nil || pending.Status != presend.StatusPending || pending.OpenIDSealed == "" {
			t.Fatalf("after the crash: %+v %v", pending, err)
		}
		if n, err := e.svc.Resume(ctx, 0); n != 1 || err != nil {
			t.Fatalf("resume: %d %v", n, err)
		}
		got, _ := e.svc.Get(ctx, pending.ID)
		if got.Status != presend.StatusIssued || got.OpenIDSealed != "" || got.Token == "" {
			t.Fatalf("after resume: %+v", got)
		}
		reqs := e.requests()
		if len(reqs) != 1 || reqs[0].RequestNo != pending.SendRequestNo || reqs[0].Count != 1 {
			t.Fatalf("requests %+v", reqs)
		}
		if info, _ := e.sb.Token(got.Token); info.OpenID != id {
			t.Fatal("the resent request named another user")
		}
		if es := e.entries(); len(es) != 2 || es[0].Outcome != audit.Pending || es[1].Outcome != audit.Success || !strings.Contains(es[1].Detail, `"resent":true`) {
			t.Fatalf("entries %+v", es)
		}
		if hits := e.rowsContaining(id); len(hits) > 0 {
			t.Fatalf("the OpenID is stored:\n%s", strings.Join(hits, "\n"))
		}
	})
}

// Operations that cannot be resent are ended, with a failure entry: one
// whose OpenID was never recorded, and one whose sealed OpenID no longer
// opens (the session secret changed).
func TestResumeAbandons(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := context.Background()
	// An intent without its token record: the crash came between them.
	store := &wxops.Store{DB: e.db.Gorm, Now: e.clock.Now}
	op, _, err := store.Record(ctx, ac, wxops.Intent{Kind: presend.OpKind, RequestNo: "PS_ORPHAN_0001", Body: map[string]string{}},
		wxops.Audit{Action: presend.ActionIssue, TargetType: audit.TargetStock, TargetID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	// A token sealed under another secret.
	e.svc.AfterIntent = func() { panic(crash{}) }
	func() {
		defer func() { recover() }()
		_, _ = e.svc.Issue(ctx, ac, input(sandbox.SeedBundleMemberDay, openID(7), "rekeyed"))
	}()
	e.svc.AfterIntent = nil
	e.svc.Keys, _ = presend.NewKeys([]byte(strings.Repeat("another-secret-", 3)))
	if n, err := e.svc.Resume(ctx, 0); n != 0 || err != nil {
		t.Fatalf("resume: %d %v", n, err)
	}
	var ops []models.WxOperation
	db := e.db.Gorm
	db.Where("kind = ?", presend.OpKind).Order("id").Find(&ops)
	if len(ops) != 2 || ops[0].ID != op.ID || ops[0].Status != models.OpFailed || ops[1].Status != models.OpFailed || ops[1].WxErrorCode != "UNRECOVERABLE" {
		t.Fatalf("operations %+v", ops)
	}
	var toks []presend.Token
	db.Find(&toks)
	if len(toks) != 1 || toks[0].Status != presend.StatusFailed || toks[0].OpenIDSealed != "" {
		t.Fatalf("tokens %+v", toks)
	}
	if len(e.requests()) != 0 {
		t.Fatal("something was sent")
	}
	es := e.entries()
	if len(es) != 4 || es[2].Outcome != audit.Failure || es[3].Outcome != audit.Failure {
		t.Fatalf("entries %+v", es)
	}
}

func TestBundles(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	bs, err := e.svc.Bundles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{sandbox.SeedBundleMemberDay: 2, sandbox.SeedBundlePaused: 1, sandbox.SeedBundleLimited: 1}
	if len(bs) != len(want) {
		t.Fatalf("bundles %+v", bs)
	}
	for _, b := range bs {
		if b.ProductCouponID != sandbox.SeedBundleCoupon || len(b.Stocks) != want[b.StockBundleID] {
			t.Fatalf("bundle %+v", b)
		}
	}
}
