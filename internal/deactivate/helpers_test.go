package deactivate_test

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/testdb"
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

// env is a seeded sandbox on a manual clock, a client for it, a migrated
// database with the sandbox's product-coupon stocks registered, and the
// service under test.
type env struct {
	t     *testing.T
	db    *database.DB
	sb    *sandbox.Sandbox
	clock *sandbox.Clock
	wx    *wxpay.Client
	svc   *deactivate.Service
	refs  map[string]*models.Stock // by WeChat stock ID
}

func newEnv(t *testing.T, db *database.DB) *env {
	t.Helper()
	keysOnce.Do(func() { keys, keysErr = sandbox.GenerateKeys() })
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	clk := &sandbox.Clock{} // the wall clock, advanced by tests; the client signs on it too
	sb, err := sandbox.New(sandbox.Options{Clock: clk, Seed: true, Keys: keys, Rand: rand.New(rand.NewPCG(7, 9))})
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
	e := &env{t: t, db: db, sb: sb, clock: clk, wx: wx, refs: map[string]*models.Stock{}}
	e.svc = &deactivate.Service{DB: db.Gorm, WX: wx, Now: clk.Now}
	reg := &stocks.Service{DB: db.Gorm, WX: wx, Now: clk.Now}
	for _, info := range sb.Stocks() {
		if info.Kind != sandbox.KindProductCoupon {
			continue
		}
		st, err := reg.Register(context.Background(), audit.Context{Actor: "test"}, stocks.RegisterInput{
			Kind: models.KindProductCoupon, ProductCouponID: info.ProductCouponID, StockID: info.StockID,
		})
		if err != nil {
			t.Fatal(err)
		}
		e.refs[info.StockID] = st
	}
	return e
}

// stock reloads the console's record of a sandbox stock.
func (e *env) stock(stockID string) *models.Stock {
	e.t.Helper()
	var st models.Stock
	if err := e.db.Gorm.Preload("Bundles").Take(&st, e.refs[stockID].ID).Error; err != nil {
		e.t.Fatal(err)
	}
	return &st
}

// wxState is the stock's state in the sandbox.
func (e *env) wxState(stockID string) string {
	for _, s := range e.sb.Stocks() {
		if s.StockID == stockID {
			return s.State
		}
	}
	e.t.Fatalf("sandbox has no stock %s", stockID)
	return ""
}

// requests are the sandbox's deactivation request numbers.
func (e *env) requests() []sandbox.RequestInfo {
	var out []sandbox.RequestInfo
	for _, r := range e.sb.Requests() {
		if r.Endpoint == sandbox.EndpointDeactivateStock {
			out = append(out, r)
		}
	}
	return out
}

// entries are the audit entries of an action, oldest first.
func (e *env) entries(action string) []audit.Entry {
	e.t.Helper()
	var out []audit.Entry
	if err := e.db.Gorm.Where("action = ?", action).Order("seq").Find(&out).Error; err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) ops() []models.WxOperation {
	e.t.Helper()
	var out []models.WxOperation
	if err := e.db.Gorm.Where("kind = ?", deactivate.OpKind).Order("id").Find(&out).Error; err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) actor() audit.Context {
	return audit.Context{Actor: "olivia", Roles: []string{"operator"}, RequestID: "req-1"}
}
