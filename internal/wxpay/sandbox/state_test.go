package sandbox

import (
	"bufio"
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

func TestStateDirPersistence(t *testing.T) {
	dir := t.TempDir()
	clk := NewClock(t0)
	open := func() *env {
		// No Keys: the first sandbox generates and saves them, the second
		// must load the same ones.
		sb, err := New(Options{Clock: clk, Seed: true, StateDir: dir, SaveDelay: time.Millisecond})
		must(t, err)
		srv := httptest.NewServer(sb.Handler())
		return &env{tb: t, sb: sb, srv: srv, clock: clk, creds: sb.Credentials()}
	}
	e := open()
	upload := pcUpload("PERSIST_UP_1", []string{"KEEP-1", "KEEP-2"})
	first := e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockSending), upload, asSP)
	e.ok(first, nil)
	e.ok(e.call(http.MethodPost, bfUploadPath(SeedBusifavorUpload), bfUpload("PERSIST_BF_1", []string{"BF KEEP"}), asMerchant), nil)
	var created favorCreateReply
	e.ok(e.call(http.MethodPost, favorCreatePath, validFavor("PERSIST_FAVOR_1"), asMerchant), &created)
	e.ok(e.call(http.MethodPost, deactivatePath(SeedProductCoupon, SeedStockPaused), deactivateBody("PERSIST_DEACT", "门店调整"), asBrand), nil)
	var tok preSendReply
	e.ok(e.call(http.MethodPost, preSendPath(DemoOpenID), preSendBody(SeedBundleMemberDay, "PERSIST_SEND"), asBrand), &tok)
	stocks, requests, creds := e.sb.Stocks(), e.sb.Requests(), e.creds
	// Let a debounced save run, then close (which saves again).
	time.Sleep(20 * time.Millisecond)
	e.srv.Close()
	must(t, e.sb.Close())

	for _, name := range stateKeyFiles {
		fi, err := os.Stat(filepath.Join(dir, keysDirName, name))
		must(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", name, fi.Mode().Perm())
		}
	}

	e2 := open()
	defer func() { e2.srv.Close(); must(t, e2.sb.Close()) }()
	if e2.creds.MchSerial != creds.MchSerial || e2.creds.BrandSerial != creds.BrandSerial || e2.creds.SPSerial != creds.SPSerial ||
		e2.creds.BrandPubKeyID != creds.BrandPubKeyID || !e2.creds.BrandPubKey.Equal(creds.BrandPubKey) ||
		e2.creds.MchPubKeyID != creds.MchPubKeyID || string(e2.creds.SPAPIv3Key) != string(creds.SPAPIv3Key) {
		t.Error("keys changed across restart")
	}
	if got := e2.sb.Stocks(); !sameStocks(stocks, got) {
		t.Errorf("stocks changed across restart:\n%+v\n%+v", stocks, got)
	}
	if got := e2.stock(KindProductCoupon, SeedStockSending); !slices.Contains(got.Codes, "KEEP-2") {
		t.Errorf("codes lost: %v", got.Codes)
	}
	if got := e2.stock(KindBusifavor, SeedBusifavorUpload); !slices.Equal(got.Codes, []string{"BF KEEP"}) {
		t.Errorf("busifavor codes %v", got.Codes)
	}
	if got := e2.sb.Requests(); !slices.Equal(got, requests) {
		t.Errorf("request log changed:\n%+v\n%+v", requests, got)
	}
	// Request numbers still replay their first reply.
	again := e2.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockSending), upload, asSP)
	e2.ok(again, nil)
	if !bytes.Equal(again.body, first.body) {
		t.Errorf("replay after restart:\n%s\n%s", first.body, again.body)
	}
	if info, ok := e2.sb.Token(tok.Token); !ok || !info.Valid {
		t.Error("token lost across restart")
	}
	// New favor stocks keep counting from where they were.
	var next favorCreateReply
	e2.ok(e2.call(http.MethodPost, favorCreatePath, validFavor("PERSIST_FAVOR_2"), asMerchant), &next)
	if next.StockID == created.StockID {
		t.Errorf("favor stock ID %s reused", next.StockID)
	}
}

func TestStateCodesFileRecovers(t *testing.T) {
	dir := t.TempDir()
	sb, err := New(Options{Clock: NewClock(t0), Seed: true, StateDir: dir, Keys: sharedKeys(t)})
	must(t, err)
	must(t, sb.Close())
	// An append cut short by a crash leaves a line without its newline.
	path := codesFile(dir, KindProductCoupon, SeedProductCoupon+"_"+SeedStockSending)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	f.WriteString("HALF-WRIT")
	f.Close()

	sb, err = New(Options{Clock: NewClock(t0), Seed: true, StateDir: dir, Keys: sharedKeys(t)})
	must(t, err)
	defer sb.Close()
	for _, s := range sb.Stocks() {
		if s.StockID == SeedStockSending && (s.TotalCount != 8 || slices.Contains(s.Codes, "HALF-WRIT")) {
			t.Errorf("%d codes: %v", s.TotalCount, s.Codes)
		}
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Error("partial line not cut")
	}
}

func TestWriteFiles(t *testing.T) {
	e := newEnv(t, nil)
	dir := t.TempDir()
	must(t, e.sb.WriteFiles(dir, "127.0.0.1:8081"))

	data, err := os.ReadFile(filepath.Join(dir, EnvFileName))
	must(t, err)
	env := map[string]string{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || !strings.HasPrefix(k, "CONSOLE_WXPAY_") {
			t.Errorf("line %q", sc.Text())
		}
		env[k] = v
		order = append(order, k)
	}
	want := []string{"CONSOLE_WXPAY_MODE", "CONSOLE_WXPAY_BASE_URL", "CONSOLE_WXPAY_FALLBACK_URL",
		"CONSOLE_WXPAY_MCHID", "CONSOLE_WXPAY_MCH_SERIAL", "CONSOLE_WXPAY_MCH_KEY", "CONSOLE_WXPAY_MCH_PUBKEY_ID", "CONSOLE_WXPAY_MCH_PUBKEY",
		"CONSOLE_WXPAY_SP_MCHID", "CONSOLE_WXPAY_SP_SERIAL", "CONSOLE_WXPAY_SP_KEY", "CONSOLE_WXPAY_SP_PUBKEY_ID", "CONSOLE_WXPAY_SP_PUBKEY",
		"CONSOLE_WXPAY_BRAND_ID", "CONSOLE_WXPAY_BRAND_SERIAL", "CONSOLE_WXPAY_BRAND_KEY", "CONSOLE_WXPAY_BRAND_PUBKEY_ID", "CONSOLE_WXPAY_BRAND_PUBKEY"}
	if !slices.Equal(order, want) {
		t.Errorf("variables %v", order)
	}
	if env["CONSOLE_WXPAY_MODE"] != "live" || env["CONSOLE_WXPAY_BASE_URL"] != "http://127.0.0.1:8081" ||
		env["CONSOLE_WXPAY_FALLBACK_URL"] != env["CONSOLE_WXPAY_BASE_URL"] {
		t.Errorf("%v", env)
	}
	if env["CONSOLE_WXPAY_MCHID"] != MerchantID || env["CONSOLE_WXPAY_SP_MCHID"] != ServiceProviderID || env["CONSOLE_WXPAY_BRAND_ID"] != BrandID ||
		env["CONSOLE_WXPAY_MCH_SERIAL"] != e.creds.MchSerial || env["CONSOLE_WXPAY_MCH_PUBKEY_ID"] != e.creds.MchPubKeyID ||
		!strings.HasPrefix(env["CONSOLE_WXPAY_MCH_PUBKEY_ID"], "PUB_KEY_ID_") {
		t.Errorf("%v", env)
	}
	keys := map[string]*rsa.PrivateKey{
		"CONSOLE_WXPAY_MCH_KEY": e.creds.MchKey, "CONSOLE_WXPAY_SP_KEY": e.creds.SPKey, "CONSOLE_WXPAY_BRAND_KEY": e.creds.BrandKey,
	}
	for name, want := range keys {
		p := env[name]
		if !filepath.IsAbs(p) {
			t.Errorf("%s=%s is not absolute", name, p)
		}
		k, err := signing.LoadPrivateKey(p)
		if err != nil || !want.Equal(k) {
			t.Errorf("%s: %v", name, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", name, fi.Mode().Perm())
		}
	}
	for name, want := range map[string]*rsa.PublicKey{
		"CONSOLE_WXPAY_MCH_PUBKEY": e.creds.MchPubKey, "CONSOLE_WXPAY_SP_PUBKEY": e.creds.SPPubKey, "CONSOLE_WXPAY_BRAND_PUBKEY": e.creds.BrandPubKey,
	} {
		pub, err := signing.LoadPublicKey(env[name])
		if err != nil || !pub.Equal(want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if shellQuote("/tmp/with space/k.pem") != "'/tmp/with space/k.pem'" || shellQuote("it's") != `'it'\''s'` {
		t.Error("shellQuote")
	}
}

func TestInspectionShapes(t *testing.T) {
	e := newEnv(t, nil)
	var raw struct {
		Stocks []map[string]json.RawMessage `json:"stocks"`
	}
	e.get("/_sandbox/stocks", &raw)
	fields := []string{"kind", "stock_id", "product_coupon_id", "stock_bundle_ids", "name", "state", "coupon_code_mode", "total_count", "available_count", "codes"}
	for _, s := range raw.Stocks {
		for _, f := range fields {
			if _, ok := s[f]; !ok {
				t.Fatalf("stock %s lacks %q", s["stock_id"], f)
			}
		}
		if string(s["codes"]) == "null" || string(s["stock_bundle_ids"]) == "null" {
			t.Errorf("null list in %v", s)
		}
	}
	var list struct {
		Stocks []StockInfo `json:"stocks"`
	}
	e.get("/_sandbox/stocks", &list)
	byID := map[string]StockInfo{}
	kinds := map[string]int{}
	for _, s := range list.Stocks {
		byID[s.StockID] = s
		kinds[s.Kind]++
	}
	if kinds[KindFavor] != 1 || kinds[KindBusifavor] != 2 || kinds[KindProductCoupon] != 10 {
		t.Errorf("kinds %v", kinds)
	}
	for id, want := range map[string]string{
		SeedStockSending: StateSending, SeedStockPaused: StatePaused, SeedStockAuditing: StateAuditing,
		SeedStockStopped: StateStopped, SeedStockDeactivated: StateDeactivated,
		SeedBusifavorUpload: BusifavorRunning, SeedFavorStock: FavorRunning,
	} {
		if byID[id].State != want {
			t.Errorf("%s: state %q, want %q", id, byID[id].State, want)
		}
	}
	if s := byID[SeedBundleStockSmall]; s.ProductCouponID != SeedBundleCoupon || !slices.Equal(s.StockBundleIDs, []string{SeedBundleMemberDay}) {
		t.Errorf("%+v", s)
	}
	if s := byID[SeedStockSending]; s.TotalCount != 8 || s.AvailableCount != 2 || len(s.Codes) != 8 || s.CouponCodeMode != CodeModeUpload || s.Name == "" {
		t.Errorf("%+v", s)
	}

	var noCodes struct {
		Stocks []map[string]json.RawMessage `json:"stocks"`
	}
	e.get("/_sandbox/stocks?codes=0", &noCodes)
	for _, s := range noCodes.Stocks {
		if _, ok := s["codes"]; ok {
			t.Fatal("codes listed with ?codes=0")
		}
		if _, ok := s["total_count"]; !ok {
			t.Fatal("total_count missing with ?codes=0")
		}
	}

	e.ok(e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockSending), pcUpload("SHAPE_UP_1", []string{"S1"}), asSP), nil)
	var reqs struct {
		Requests []map[string]json.RawMessage `json:"requests"`
	}
	e.get("/_sandbox/requests", &reqs)
	if len(reqs.Requests) != 1 {
		t.Fatalf("%v", reqs)
	}
	for _, f := range []string{"endpoint", "request_no", "count", "identical"} {
		if _, ok := reqs.Requests[0][f]; !ok {
			t.Errorf("request lacks %q", f)
		}
	}
	var bundles struct {
		Bundles []BundleInfo `json:"bundles"`
	}
	e.get("/_sandbox/bundles", &bundles)
	if len(bundles.Bundles) != 3 {
		t.Errorf("%+v", bundles)
	}
}

// TestLargeInventory puts a million codes in one stock: uploads still check
// against all of them, and the listing without codes stays cheap.
func TestLargeInventory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million codes")
	}
	e := newEnv(t, nil)
	e.sb.mu.Lock()
	st := e.sb.st.busifavor[SeedBusifavorUpload]
	for i := range 1_000_000 {
		st.codes.add("M" + strings.Repeat("0", 7-len(itoa(i))) + itoa(i))
	}
	e.sb.mu.Unlock()
	var got bfUploadReply
	e.ok(e.call(http.MethodPost, bfUploadPath(SeedBusifavorUpload), bfUpload("LARGE_1", []string{"M0999999", "M1000000"}), asMerchant), &got)
	if !slices.Equal(got.ExistCodes, []string{"M0999999"}) || !slices.Equal(got.SuccessCodes, []string{"M1000000"}) {
		t.Errorf("%+v", got)
	}
	start := time.Now()
	var list struct {
		Stocks []StockInfo `json:"stocks"`
	}
	e.get("/_sandbox/stocks?codes=0", &list)
	for _, s := range list.Stocks {
		if s.StockID == SeedBusifavorUpload && s.TotalCount != 1_000_001 {
			t.Errorf("total %d", s.TotalCount)
		}
	}
	t.Logf("listing without codes: %v", time.Since(start))
	if got := e.stock(KindBusifavor, SeedBusifavorUpload); len(got.Codes) != 1_000_001 {
		t.Errorf("%d codes listed", len(got.Codes))
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}
