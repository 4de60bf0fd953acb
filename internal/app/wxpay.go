package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
// sandbox mode the in-process sandbox it talks to over loopback HTTP.
type wxPay struct {
	Client  *wxpay.Client
	Sandbox *sandbox.Sandbox // nil in live mode
	BaseURL string
	close   func()
}

// newWxPay builds the client for the configured mode. In sandbox mode it
// starts the simulator on a loopback port, its keys and state kept under
// DataDir/sandbox, and signs with the sandbox's credentials.
func newWxPay(cfg config.Config, logger *slog.Logger, sandboxKeys *sandbox.Keys) (*wxPay, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.WxPay.Mode == config.ModeLive {
		w := cfg.WxPay
		wc := wxpay.Config{
			BaseURL: w.BaseURL, FallbackURL: w.FallbackURL,
			MchID: w.MchID, MchSerial: w.MchSerial,
			SPMchID: w.SPMchID, SPSerial: w.SPSerial,
			BrandID: w.BrandID, BrandSerial: w.BrandSerial,
			PubKeyID: w.PubKeyID, UserAgent: "voucher-console/1",
		}
		if err := wc.LoadKeys(wxpay.KeyFiles{MchKey: w.MchKeyFile, SPKey: w.SPKeyFile, BrandKey: w.BrandKeyFile, PubKey: w.PubKeyFile}); err != nil {
			return nil, fmt.Errorf("WeChat Pay keys: %w", err)
		}
		client, err := wxpay.NewClient(wc, hc)
		if err != nil {
			return nil, err
		}
		return &wxPay{Client: client, BaseURL: w.BaseURL, close: func() {}}, nil
	}

	sb, err := sandbox.New(sandbox.Options{Seed: true, StateDir: filepath.Join(cfg.DataDir, "sandbox"), Keys: sandboxKeys})
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sb.Close()
		return nil, fmt.Errorf("sandbox listener: %w", err)
	}
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("sandbox stopped", "err", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	cr := sb.Credentials()
	client, err := wxpay.NewClient(wxpay.Config{
		BaseURL: base, FallbackURL: "", // never fail over from the sandbox to the real hosts
		MchID: cr.MchID, MchSerial: cr.MchSerial, MchKey: cr.MchKey,
		SPMchID: cr.SPMchID, SPSerial: cr.SPSerial, SPKey: cr.SPKey,
		BrandID: cr.BrandID, BrandSerial: cr.BrandSerial, BrandKey: cr.BrandKey,
		PubKeyID: cr.PubKeyID, PubKey: cr.PubKey, UserAgent: "voucher-console/1 (sandbox)",
	}, hc)
	if err != nil {
		srv.Close()
		sb.Close()
		return nil, err
	}
	logger.Info("WeChat Pay sandbox running in-process", "url", base)
	return &wxPay{Client: client, Sandbox: sb, BaseURL: base, close: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = sb.Close()
	}}, nil
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
