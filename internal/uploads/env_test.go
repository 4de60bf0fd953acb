package uploads_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

// Generating the sandbox's four RSA keys takes a while; tests share one set.
var sandboxKeys = sync.OnceValues(sandbox.GenerateKeys)

// sandboxServer is a sandbox served over HTTP for the test.
type sandboxServer struct {
	*sandbox.Sandbox
	URL string

	mu       sync.Mutex
	arrivals []time.Time // of product-coupon upload requests, in order
}

func newSandbox(t testing.TB, opts sandbox.Options) *sandboxServer {
	t.Helper()
	keys, err := sandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	opts.Seed, opts.Keys = true, keys
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ss := &sandboxServer{Sandbox: sb}
	h := sb.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/upload-coupon-codes") {
			ss.mu.Lock()
			ss.arrivals = append(ss.arrivals, time.Now())
			ss.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ts.Close()
		sb.Close()
	})
	ss.URL = ts.URL
	return ss
}

// maxInWindow is the most upload requests that arrived within any window of
// length d.
func (sb *sandboxServer) maxInWindow(d time.Duration) int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	best, j := 0, 0
	for i := range sb.arrivals {
		for sb.arrivals[i].Sub(sb.arrivals[j]) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func (sb *sandboxServer) wxConfig() wxpay.Config {
	cr := sb.Credentials()
	return wxpay.Config{
		BaseURL: sb.URL, MchID: cr.MchID, MchSerial: cr.MchSerial, MchKey: cr.MchKey,
		SPMchID: cr.SPMchID, SPSerial: cr.SPSerial, SPKey: cr.SPKey,
		BrandID: cr.BrandID, BrandSerial: cr.BrandSerial, BrandKey: cr.BrandKey,
		MchPubKeyID: cr.MchPubKeyID, MchPubKey: cr.MchPubKey, SPPubKeyID: cr.SPPubKeyID, SPPubKey: cr.SPPubKey,
		BrandPubKeyID: cr.BrandPubKeyID, BrandPubKey: cr.BrandPubKey,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	}
}

// codesOf returns the sandbox's code inventory of a stock.
func (sb *sandboxServer) codesOf(t testing.TB, stockID string) []string {
	t.Helper()
	for _, st := range sb.Stocks() {
		if st.StockID == stockID {
			return st.Codes
		}
	}
	t.Fatalf("sandbox has no stock %s", stockID)
	return nil
}

// instance is one console instance's upload machinery on a database.
type instance struct {
	svc    *uploads.Service
	engine *jobs.Engine
	stop   func()
}

type envOptions struct {
	rate       wxpay.Rate // shared send rate; zero: 200/s
	options    uploads.Options
	noStart    bool // do not start the job engine
	id         string
	maxWorkers int // upload jobs worked at once; 0: 4
}

func startInstance(t testing.TB, db *database.DB, sb *sandboxServer, eo envOptions) *instance {
	t.Helper()
	ctx := context.Background()
	if err := jobs.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if eo.rate == (wxpay.Rate{}) {
		eo.rate = wxpay.PerSecond(200)
	}
	if eo.options == (uploads.Options{}) {
		eo.options = uploads.Options{Slice: 2 * time.Second, LeaseTTL: 3 * time.Second, Heartbeat: 300 * time.Millisecond, SweepEvery: time.Second}
	}
	client, err := uploads.NewUploadClient(sb.wxConfig(), &uploads.RateLimiter{DB: db}, eo.rate)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := wxpay.NewClient(sb.wxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	svc := &uploads.Service{
		DB: db, WX: client, Stocks: &stocks.Service{DB: db.Gorm, WX: reader},
		DataDir: t.TempDir(), Logger: logger, Options: eo.options,
	}
	if eo.maxWorkers == 0 {
		eo.maxWorkers = 4
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &uploads.Worker{Service: svc})
	engine, err := jobs.New(db, jobs.Config{
		Workers: workers, ID: eo.id, Logger: logger,
		Queues: map[string]river.QueueConfig{uploads.QueueName: {MaxWorkers: eo.maxWorkers}},
	})
	if err != nil {
		t.Fatal(err)
	}
	svc.Jobs = engine
	in := &instance{svc: svc, engine: engine, stop: func() {}}
	if !eo.noStart {
		in.start(t)
	}
	return in
}

func (in *instance) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := in.engine.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.svc.RunSweeper(ctx)
	}()
	var once sync.Once
	in.stop = func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer scancel()
			if err := in.engine.Stop(sctx); err != nil {
				t.Errorf("stop job engine: %v", err)
			}
			cancel()
			<-done
		})
	}
	t.Cleanup(in.stop)
}

// registerStock registers a sandbox stock on the console database.
func registerStock(t testing.TB, db *database.DB, sb *sandboxServer, kind models.StockKind, pcid, stockID string) *models.Stock {
	t.Helper()
	reader, err := wxpay.NewClient(sb.wxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := &stocks.Service{DB: db.Gorm, WX: reader}
	st, err := svc.Register(context.Background(), audit.Context{Actor: "test"}, stocks.RegisterInput{Kind: kind, ProductCouponID: pcid, StockID: stockID})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func productStock(t testing.TB, db *database.DB, sb *sandboxServer) *models.Stock {
	return registerStock(t, db, sb, models.KindProductCoupon, sandbox.SeedProductCoupon, sandbox.SeedStockSending)
}

// codeFile builds a file of n rows: valid codes prefix-000001 …, every
// invalidEvery-th row invalid and every dupEvery-th row (offset by half) a
// repeat of an earlier valid code (0: none). It returns the file and the distinct valid
// codes in it.
func codeFile(prefix string, n, invalidEvery, dupEvery int, header string) ([]byte, []string) {
	var b bytes.Buffer
	b.WriteString(header)
	var valid []string
	for i := 1; i <= n; i++ {
		switch {
		case invalidEvery > 0 && i%invalidEvery == 0:
			switch (i / invalidEvery) % 3 {
			case 0:
				fmt.Fprintf(&b, "%s-bad#%d\r\n", prefix, i) // bad character
			case 1:
				fmt.Fprintf(&b, "%s-%s\r\n", prefix, bytes.Repeat([]byte("X"), 41)) // too long
			default:
				fmt.Fprintf(&b, "%s-券%d\r\n", prefix, i) // not ASCII
			}
		case dupEvery > 0 && i%dupEvery == dupEvery/2 && len(valid) > 0:
			fmt.Fprintf(&b, "%s\r\n", valid[(i*7919)%len(valid)])
		default:
			c := fmt.Sprintf("%s-%06d", prefix, i)
			valid = append(valid, c)
			b.WriteString(c + "\r\n")
		}
	}
	return b.Bytes(), valid
}

// check uploads a file through Check.
func check(t testing.TB, svc *uploads.Service, st *models.Stock, name string, data []byte) *uploads.Upload {
	t.Helper()
	u, err := svc.Check(context.Background(), audit.Context{Actor: "olivia"}, uploads.CheckInput{
		Stock: st, FileName: name, Body: bytes.NewReader(data), MaxBytes: 100 << 20,
	})
	if err != nil {
		t.Fatalf("check %s: %v", name, err)
	}
	return u
}

// waitEnded waits for an upload to end and returns it.
func waitEnded(t testing.TB, svc *uploads.Service, id int64, timeout time.Duration) *uploads.Upload {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u, err := svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Status.Ended() {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload %d still %s after %s: %d/%d codes done", id, u.Status, timeout, u.CodesDone(), u.CodesTotal)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
