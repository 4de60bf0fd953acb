package sandbox

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	e := newEnv(t, nil)
	path := pcUploadPath(SeedProductCoupon, SeedStockSending)
	upload := func(no string) *resp { return e.call(http.MethodPost, path, pcUpload(no, []string{"F-" + no}), asSP) }

	t.Run("SYSTEM_ERROR_fail_rate", func(t *testing.T) {
		e := e.in(t)
		must(t, e.sb.SetFaults(Faults{FailRate: 1}))
		defer e.sb.SetFaults(Faults{})
		before := e.sb.Stocks()
		e.fails(upload("FAULT_500_1"), 500, "SYSTEM_ERROR")
		e.fails(e.call(http.MethodPost, deactivatePath(SeedProductCoupon, SeedStockSending), deactivateBody("FAULT_500_2", "故障"), asBrand), 500, "SYSTEM_ERROR")
		if !sameStocks(before, e.sb.Stocks()) {
			t.Error("a failed call changed state")
		}
		// The number was seen, so a retry is visible in the request log.
		if r, ok := e.request(EndpointUploadProductCouponCodes, "FAULT_500_1"); !ok || r.Count != 1 {
			t.Errorf("request log %+v", r)
		}
	})
	t.Run("RATELIMIT_EXCEEDED_throttle_rate", func(t *testing.T) {
		e := e.in(t)
		must(t, e.sb.SetFaults(Faults{ThrottleRate: 1}))
		defer e.sb.SetFaults(Faults{})
		e.fails(upload("FAULT_429_1"), 429, "RATELIMIT_EXCEEDED")
		// Busifavor's document calls it FREQUENCY_LIMITED.
		e.fails(e.call(http.MethodPost, bfUploadPath(SeedBusifavorUpload), bfUpload("FAULT_429_2", []string{"A"}), asMerchant), 429, "FREQUENCY_LIMITED")
	})
	t.Run("drop_rate", func(t *testing.T) {
		e := e.in(t)
		must(t, e.sb.SetFaults(Faults{DropRate: 1}))
		defer e.sb.SetFaults(Faults{})
		before := e.sb.Stocks()
		r := upload("FAULT_DROP_1")
		if r.netErr == nil {
			t.Fatalf("want a closed connection, got %s", r)
		}
		if !sameStocks(before, e.sb.Stocks()) {
			t.Error("a dropped call changed state")
		}
	})
	t.Run("bad_signature_rate", func(t *testing.T) {
		e := e.in(t)
		must(t, e.sb.SetFaults(Faults{BadSignatureRate: 1}))
		r := upload("FAULT_SIG_1")
		must(t, e.sb.SetFaults(Faults{}))
		if r.status != 200 || r.sigErr == nil {
			t.Fatalf("want 200 with a signature that does not verify, got %s (sig %v)", r, r.sigErr)
		}
		// The call was handled; the retry gets the same reply, now signed.
		again := upload("FAULT_SIG_1")
		e.ok(again, nil)
		if string(again.body) != string(r.body) {
			t.Error("retry after a bad signature got another reply")
		}
	})
	t.Run("latency", func(t *testing.T) {
		e := e.in(t)
		must(t, e.sb.SetFaults(Faults{Latency: 150 * time.Millisecond}))
		defer e.sb.SetFaults(Faults{})
		start := time.Now()
		e.ok(e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asMerchant), nil)
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("reply after %v", d)
		}
	})
	t.Run("share", func(t *testing.T) {
		e := e.in(t)
		must(t, e.sb.SetFaults(Faults{FailRate: 0.5}))
		defer e.sb.SetFaults(Faults{})
		fails := 0
		for range 200 {
			if e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asMerchant).status == 500 {
				fails++
			}
		}
		if fails < 60 || fails > 140 {
			t.Errorf("%d of 200 failed at a 0.5 fail rate", fails)
		}
	})
	t.Run("http_endpoint", func(t *testing.T) {
		e := e.in(t)
		status, body := e.post("/_sandbox/faults", `{"fail_rate":1,"latency":"10ms"}`)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		if f := e.sb.Faults(); f.FailRate != 1 || f.Latency != 10*time.Millisecond {
			t.Errorf("%+v", f)
		}
		e.fails(upload("FAULT_HTTP_1"), 500, "SYSTEM_ERROR")
		if status, _ := e.post("/_sandbox/faults", `{"fail_rate":2}`); status != 400 {
			t.Errorf("a rate of 2 was accepted: %d", status)
		}
		e.post("/_sandbox/faults", `{}`)
		var f Faults
		e.get("/_sandbox/faults", &f)
		if f != (Faults{}) {
			t.Errorf("faults not cleared: %+v", f)
		}
		e.ok(upload("FAULT_HTTP_2"), nil)
	})
	t.Run("inspection_is_never_faulted", func(t *testing.T) {
		e := e.in(t)
		must(t, e.sb.SetFaults(Faults{FailRate: 1, DropRate: 1}))
		defer e.sb.SetFaults(Faults{})
		var out map[string]json.RawMessage
		e.get("/_sandbox/stocks?codes=0", &out)
	})
}

func TestFaultsJSON(t *testing.T) {
	f := Faults{FailRate: 0.1, ThrottleRate: 0.2, Latency: 1500 * time.Millisecond, DropRate: 0.3, BadSignatureRate: 0.4}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Faults
	if err := json.Unmarshal(data, &back); err != nil || back != f {
		t.Errorf("%s → %+v, %v", data, back, err)
	}
	if err := json.Unmarshal([]byte(`{"latency":250}`), &back); err != nil || back.Latency != 250*time.Millisecond {
		t.Errorf("milliseconds: %+v %v", back, err)
	}
	if _, err := New(Options{Faults: Faults{DropRate: -1}, Keys: sharedKeys(t)}); err == nil {
		t.Error("negative rate accepted")
	}
}

func TestRateLimit(t *testing.T) {
	t.Run("RATELIMIT_EXCEEDED_option", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.RateLimit = 2 })
		path := pcStockPath(SeedProductCoupon, SeedStockSending)
		e.ok(e.call(http.MethodGet, path, nil, asBrand), nil)
		e.ok(e.call(http.MethodGet, path, nil, asBrand), nil)
		e.fails(e.call(http.MethodGet, path, nil, asBrand), 429, "RATELIMIT_EXCEEDED")
		// Limits are per endpoint.
		e.ok(e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asMerchant), nil)
		e.clock.Advance(time.Second)
		e.ok(e.call(http.MethodGet, path, nil, asBrand), nil)
	})
	t.Run("RATELIMIT_EXCEEDED_deactivate_20_per_second", func(t *testing.T) {
		e := newEnv(t, nil)
		for i := range 20 {
			r := e.call(http.MethodPost, deactivatePath(SeedProductCoupon, "404"), deactivateBody("RL_DEACT_"+string(rune('A'+i)), "x"), asBrand)
			e.fails(r, 404, "NOT_FOUND")
		}
		e.fails(e.call(http.MethodPost, deactivatePath(SeedProductCoupon, "404"), deactivateBody("RL_DEACT_Z", "x"), asBrand), 429, "RATELIMIT_EXCEEDED")
		e.clock.Advance(100 * time.Millisecond) // two more tokens at 20/s
		e.fails(e.call(http.MethodPost, deactivatePath(SeedProductCoupon, "404"), deactivateBody("RL_DEACT_Y", "x"), asBrand), 404, "NOT_FOUND")
	})
	t.Run("FREQUENCY_LIMITED_create_favor_60_per_minute", func(t *testing.T) {
		e := newEnv(t, nil)
		for range 60 {
			e.fails(e.call(http.MethodPost, favorCreatePath, "{}", asMerchant), 400, "PARAM_ERROR")
		}
		e.fails(e.call(http.MethodPost, favorCreatePath, "{}", asMerchant), 429, "FREQUENCY_LIMITED")
		e.clock.Advance(time.Second) // one more token at 60/min
		e.fails(e.call(http.MethodPost, favorCreatePath, "{}", asMerchant), 400, "PARAM_ERROR")
		e.fails(e.call(http.MethodPost, favorCreatePath, "{}", asMerchant), 429, "FREQUENCY_LIMITED")
	})
	t.Run("uploads_unlimited_by_default", func(t *testing.T) {
		e := newEnv(t, nil)
		for i := range 100 {
			e.ok(e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockSending), pcUpload("RL_UP_"+string(rune('0'+i/10))+string(rune('0'+i%10)), []string{"RL"}), asSP), nil)
		}
	})
}

func TestClock(t *testing.T) {
	e := newEnv(t, nil)
	status, body := e.post("/_sandbox/clock", `{"advance":"5m"}`)
	if status != 200 || !e.sb.Now().Equal(t0.Add(5*time.Minute)) {
		t.Errorf("%d %s, now %v", status, body, e.sb.Now())
	}
	if status, _ := e.post("/_sandbox/clock", `{"advance":"soon"}`); status != 400 {
		t.Errorf("bad duration: %d", status)
	}

	fixed, err := New(Options{Now: func() time.Time { return t0 }, Keys: sharedKeys(t)})
	must(t, err)
	defer fixed.Close()
	if err := fixed.Advance(time.Minute); err == nil {
		t.Error("an external clock was advanced")
	}

	// The default clock follows the wall clock and moves business time only.
	own, err := New(Options{Keys: sharedKeys(t)})
	must(t, err)
	defer own.Close()
	must(t, own.Advance(time.Hour))
	if d := time.Until(own.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("advanced clock is %v ahead", d)
	}
	if d := time.Since(own.wireNow()); d > time.Minute || d < -time.Minute {
		t.Errorf("signature clock moved by %v", d)
	}
}

// TestConcurrentUploads has several callers upload to one stock at once;
// under -race it checks the locking.
func TestConcurrentUploads(t *testing.T) {
	e := newEnv(t, nil)
	before := e.stock(KindProductCoupon, SeedStockSending).TotalCount
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				no := "CONC_" + string(rune('A'+w)) + "_" + string(rune('0'+i))
				r := e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockSending), pcUpload(no, codes(no+"-", 50)), asSP)
				if r.status != 200 {
					t.Errorf("%s: %s", no, r)
				}
				e.sb.Stocks()
				e.sb.Requests()
			}
		})
	}
	wg.Wait()
	if got := e.stock(KindProductCoupon, SeedStockSending).TotalCount; got != before+4*5*50 {
		t.Errorf("total %d, want %d", got, before+1000)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
