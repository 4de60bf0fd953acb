package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"voucherconsole/internal/wxpay/sandbox"
)

// sandboxOptions are the flags of `console sandbox`.
type sandboxOptions struct {
	addr         string
	dir          string
	failRate     float64
	throttleRate float64
	latency      time.Duration
	dropRate     float64
	rateLimit    float64
	verifyMode   string
}

func bindSandboxFlags(fs *flag.FlagSet) *sandboxOptions {
	o := &sandboxOptions{}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8090", "address the sandbox listens on")
	fs.StringVar(&o.dir, "dir", "./sandbox", "directory for the sandbox's key files, sandbox.env and state")
	fs.Float64Var(&o.failRate, "fail-rate", 0, "share of requests answered 500 SYSTEM_ERROR (0–1)")
	fs.Float64Var(&o.throttleRate, "throttle-rate", 0, "share of requests answered 429 (0–1)")
	fs.DurationVar(&o.latency, "latency", 0, "delay added to every request")
	fs.Float64Var(&o.dropRate, "drop-rate", 0, "share of connections closed without a reply (0–1)")
	fs.Float64Var(&o.rateLimit, "rate-limit", 0, "requests per second per endpoint above which it answers 429 (0: the documented limits)")
	fs.StringVar(&o.verifyMode, "verify-mode", string(sandbox.VerifyPublicKey), "how replies are signed: public-key (each account's WeChat Pay public key), certificate (platform certificates, served by GET /v3/certificates) or both (WeChat Pay's migration)")
	return o
}

// runSandbox serves the WeChat Pay sandbox alone. It writes the key files and
// sandbox.env into the directory, so `set -a; . DIR/sandbox.env` points a
// console at it, and keeps its state there across restarts.
func runSandbox(ctx context.Context, o sandboxOptions, logger *slog.Logger, out io.Writer) error {
	mode, err := sandbox.ParseVerifyMode(o.verifyMode)
	if err != nil {
		return err
	}
	sb, err := sandbox.New(sandbox.Options{
		Seed: true, StateDir: filepath.Join(o.dir, "state"), RateLimit: o.rateLimit, VerifyMode: mode,
		Faults: sandbox.Faults{FailRate: o.failRate, ThrottleRate: o.throttleRate, Latency: o.latency, DropRate: o.dropRate},
	})
	if err != nil {
		return err
	}
	defer sb.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	if err := sb.WriteFiles(o.dir, base); err != nil {
		return fmt.Errorf("write sandbox files: %w", err)
	}
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	envFile, _ := filepath.Abs(filepath.Join(o.dir, "sandbox.env"))
	fmt.Fprintf(out, "WeChat Pay sandbox listening on %s (verify mode %s)\nconsole settings: set -a; . %s; set +a\n", base, mode, envFile)
	logger.Info("sandbox listening", "url", base, "dir", o.dir)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
