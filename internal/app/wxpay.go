package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

// wxPay is the WeChat Pay access of a running console: the client, and in
// sandbox mode the in-process sandbox it talks to through its handler.
type wxPay struct {
	Client      *wxpay.Client
	Sandbox     *sandbox.Sandbox // nil in live mode
	BaseURL     string
	FallbackURL string
	// Transport reaches the in-process sandbox (nil in live mode); clients
	// built beside Client use it too.
	Transport http.RoundTripper
	close     func()
}

// liveConfig is the client configuration of live mode: each account's ID,
// serial and key files, and how its replies are verified.
func liveConfig(w config.WxPay) (wxpay.Config, error) {
	wc := wxpay.Config{
		BaseURL: w.BaseURL, FallbackURL: w.FallbackURL,
		MchID: w.MchID, MchSerial: w.MchSerial,
		SPMchID: w.SPMchID, SPSerial: w.SPSerial,
		BrandID: w.BrandID, BrandSerial: w.BrandSerial,
		PubKeyID: w.PubKeyID, MchPubKeyID: w.MchPubKeyID, SPPubKeyID: w.SPPubKeyID, BrandPubKeyID: w.BrandPubKeyID,
		UserAgent: "voucher-console/1", CertRefreshEvery: w.CertRefresh,
	}
	if err := wc.LoadKeys(wxpay.KeyFiles{
		MchKey: w.MchKeyFile, SPKey: w.SPKeyFile, BrandKey: w.BrandKeyFile, PubKey: w.PubKeyFile,
		MchPubKey: w.MchPubKeyFile, SPPubKey: w.SPPubKeyFile, BrandPubKey: w.BrandPubKeyFile,
		MchAPIv3Key: w.MchAPIv3KeyFile, SPAPIv3Key: w.SPAPIv3KeyFile, BrandAPIv3Key: w.BrandAPIv3KeyFile,
	}); err != nil {
		return wc, fmt.Errorf("WeChat Pay keys: %w", err)
	}
	return wc, nil
}

// sandboxConfig is the client configuration for a sandbox: each account's
// own keys and WeChat Pay public key.
func sandboxConfig(base string, cr sandbox.Credentials) wxpay.Config {
	return wxpay.Config{
		BaseURL: base, FallbackURL: "", // never fail over from the sandbox to the real hosts
		MchID: cr.MchID, MchSerial: cr.MchSerial, MchKey: cr.MchKey, MchPubKeyID: cr.MchPubKeyID, MchPubKey: cr.MchPubKey,
		SPMchID: cr.SPMchID, SPSerial: cr.SPSerial, SPKey: cr.SPKey, SPPubKeyID: cr.SPPubKeyID, SPPubKey: cr.SPPubKey,
		BrandID: cr.BrandID, BrandSerial: cr.BrandSerial, BrandKey: cr.BrandKey, BrandPubKeyID: cr.BrandPubKeyID, BrandPubKey: cr.BrandPubKey,
		UserAgent: "voucher-console/1 (sandbox)",
	}
}

// newWxPay builds the client for the configured mode. In sandbox mode it
// starts the simulator in-process (handlerTransport), its keys and state kept under
// DataDir/sandbox, and signs with the sandbox's credentials. In live mode
// platform certificates, where an account uses them, are kept in store (nil:
// in this process only).
func newWxPay(cfg config.Config, store wxpay.CertStorage, logger *slog.Logger, sandboxKeys *sandbox.Keys) (*wxPay, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.WxPay.Mode == config.ModeLive {
		wc, err := liveConfig(cfg.WxPay)
		if err != nil {
			return nil, err
		}
		wc.CertStorage = store
		client, err := wxpay.NewClient(wc, hc)
		if err != nil {
			return nil, err
		}
		return &wxPay{Client: client, BaseURL: cfg.WxPay.BaseURL, FallbackURL: client.Config().FallbackURL, close: func() {}}, nil
	}

	stateDir := filepath.Join(cfg.DataDir, "sandbox")
	if err := ownerOnlyDir(stateDir); err != nil {
		return nil, err
	}
	sb, err := sandbox.New(sandbox.Options{Seed: true, StateDir: stateDir, Keys: sandboxKeys})
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	// The client reaches the sandbox's handler in-process: no listener, so
	// no other local process can read its codes through /_sandbox/stocks.
	const base = "http://sandbox.invalid"
	transport := handlerTransport{sb.Handler()}
	hc = &http.Client{Timeout: 30 * time.Second, Transport: transport}
	client, err := wxpay.NewClient(sandboxConfig(base, sb.Credentials()), hc)
	if err != nil {
		sb.Close()
		return nil, err
	}
	logger.Info("WeChat Pay sandbox running in-process (no listener)")
	return &wxPay{Client: client, Sandbox: sb, BaseURL: base, Transport: transport, close: func() { _ = sb.Close() }}, nil
}

// certRefreshCheck is how often an instance asks whether the scheduled
// platform-certificate refresh is due; the refresh itself runs every
// CONSOLE_WXPAY_CERT_REFRESH, by whichever instance claims it.
const certRefreshCheck = time.Minute

// startCertRefresh runs the scheduled refresh of platform certificates
// until the returned stop is called; a no-op when no account uses them.
func startCertRefresh(client *wxpay.Client, logger *slog.Logger) (stop func()) {
	uses := false
	for _, a := range client.Accounts() {
		uses = uses || (a.Configured && a.HasAPIv3Key)
	}
	if !uses {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(certRefreshCheck)
		defer t.Stop()
		for {
			if err := client.RefreshCertificates(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("WeChat Pay platform certificate refresh failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// registerDemoStocks registers the sandbox's demo stocks and bundles, marked
// as demo data, so a new user can try every action at once. Stocks already
// registered are left as they are.
func registerDemoStocks(ctx context.Context, svc *stocks.Service, sb *sandbox.Sandbox, logger *slog.Logger) error {
	bundles := map[string][]string{} // product_coupon_id/stock_id → bundle IDs
	for _, b := range sb.Bundles() {
		for _, sid := range b.StockIDs {
			key := b.ProductCouponID + "/" + sid
			bundles[key] = append(bundles[key], b.StockBundleID)
		}
	}
	ac := audit.Context{Actor: "console (demo data)"}
	n := 0
	for _, info := range sb.StockSummaries() {
		in := stocks.RegisterInput{
			Kind: models.StockKind(info.Kind), StockID: info.StockID, ProductCouponID: info.ProductCouponID,
			Name: info.Name, Demo: true, BundleIDs: bundles[info.ProductCouponID+"/"+info.StockID],
		}
		_, err := svc.Register(ctx, ac, in)
		switch {
		case err == nil:
			n++
		case errors.Is(err, stocks.ErrAlreadyRegistered):
		default:
			return fmt.Errorf("register demo stock %s: %w", info.StockID, err)
		}
	}
	if n > 0 {
		logger.Info("registered the sandbox's demo stocks", "count", n)
	}
	return nil
}

// CheckWxPay is `console wxpay check`: one signed read per configured
// account, each named with its outcome on out. It reports whether every
// account answered. No database is opened: the test is of WeChat Pay
// credentials, and certificates it downloads are not kept.
func CheckWxPay(ctx context.Context, cfg config.Config, logger *slog.Logger, out io.Writer) (bool, error) {
	wx, err := newWxPay(cfg, nil, logger, nil)
	if err != nil {
		return false, err
	}
	defer wx.close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	results := wx.Client.Check(ctx)
	if len(results) == 0 {
		fmt.Fprintln(out, "no WeChat Pay account is configured")
		return false, nil
	}
	ok := true
	for _, r := range results {
		if r.OK() {
			fmt.Fprintf(out, "ok    %s %s (%s): answered in %s", r.Kind, r.ID, r.Mode, r.Took.Round(time.Millisecond))
			if r.RequestID != "" {
				fmt.Fprintf(out, ", Request-ID %s", r.RequestID)
			}
			fmt.Fprintln(out)
			continue
		}
		ok = false
		fmt.Fprintf(out, "FAIL  %s %s (%s): %v\n", r.Kind, r.ID, r.Mode, r.Err)
	}
	return ok, nil
}

// handlerTransport is an http.RoundTripper that serves each request with a
// handler in this process, as a server would, without a network listener.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	defer func() {
		// A handler aborting (the sandbox dropping a "connection") is what
		// a closed connection is to a client: an error, no response.
		if r := recover(); r != nil {
			if r != http.ErrAbortHandler {
				panic(r)
			}
			resp, err = nil, errors.New("sandbox: connection closed without a reply")
		}
	}()
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, in)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()), Request: req,
	}, nil
}

// bufferedResponse collects a handler's answer (the sandbox's are small).
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }
func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *bufferedResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}
