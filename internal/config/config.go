// Package config reads the console's settings from command-line flags and
// CONSOLE_* environment variables into one struct that is passed down; no
// other package reads the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// WxPay holds the WeChat Pay settings. Key fields are file paths: the keys
// themselves are read by the wxpay package and never kept here.
type WxPay struct {
	Mode        string // "sandbox" (in-process simulator) or "live"
	BaseURL     string
	FallbackURL string

	MchID, MchSerial, MchKeyFile       string
	SPMchID, SPSerial, SPKeyFile       string
	BrandID, BrandSerial, BrandKeyFile string
	PubKeyID, PubKeyFile               string
}

// Config is every setting of the console.
type Config struct {
	Addr        string
	DatabaseURL string // empty: embedded SQLite under DataDir
	DataDir     string
	SessionKey  string // hex or raw; empty: generated and kept in DataDir
	BehindTLS   bool   // mark cookies Secure (set when a TLS proxy fronts the console)
	Timezone    string
	LogFormat   string // "text" or "json"
	LogLevel    string

	// TOTPKey seals two-factor secrets (at least 32 bytes); empty: derived
	// from the session secret.
	TOTPKey string

	LoginMaxFailures int
	LoginLockout     time.Duration

	// LowStockThreshold is the available-code count below which a stock is
	// low on codes, unless the stock has its own threshold.
	LowStockThreshold int
	// StockSyncInterval is how often every stock that can still change is
	// read back from WeChat Pay by a background job (once per interval
	// across all instances).
	StockSyncInterval time.Duration
	// AlertWeComWebhook and AlertWebhook receive alerts: a WeCom group robot
	// (markdown) and a URL taking generic JSON. Empty: console only.
	AlertWeComWebhook string
	AlertWebhook      string
	// AlertLanguage is the language of alerts sent outside the console.
	AlertLanguage string
	// AuditStream sends every audit entry, in order, to AlertWebhook.
	AuditStream    bool
	UploadMaxBytes int64
	// UploadRate is the code-upload requests per second per endpoint, held
	// across every instance sharing the database; 0 keeps the default.
	UploadRate float64

	// FaultCrashAfterIntent, for tests only, names an action (deactivate,
	// presend) after whose recorded intent the process exits at once, as a
	// crash between intent and outcome would leave it.
	FaultCrashAfterIntent string

	WxPay WxPay
}

// Mode values.
const (
	ModeSandbox = "sandbox"
	ModeLive    = "live"
)

// Bind registers every setting on fs, with getenv supplying CONSOLE_*
// defaults (flags win over variables). After fs.Parse, call the returned
// function: it reports malformed variables and invalid settings.
func Bind(fs *flag.FlagSet, getenv func(string) string) (*Config, func() error) {
	c := &Config{}
	var errs []error
	str := func(p *string, flagName, def, usage string) {
		env := EnvName(flagName)
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, flagName, def, usage+" ("+env+")")
	}
	boolean := func(p *bool, flagName string, def bool, usage string) {
		env := EnvName(flagName)
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			def = b
		}
		fs.BoolVar(p, flagName, def, usage+" ("+env+")")
	}
	integer := func(p *int, flagName string, def int, usage string) {
		env := EnvName(flagName)
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			def = n
		}
		fs.IntVar(p, flagName, def, usage+" ("+env+")")
	}
	int64v := func(p *int64, flagName string, def int64, usage string) {
		env := EnvName(flagName)
		if v := getenv(env); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			def = n
		}
		fs.Int64Var(p, flagName, def, usage+" ("+env+")")
	}
	float := func(p *float64, flagName string, def float64, usage string) {
		env := EnvName(flagName)
		if v := getenv(env); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			def = f
		}
		fs.Float64Var(p, flagName, def, usage+" ("+env+")")
	}
	duration := func(p *time.Duration, flagName string, def time.Duration, usage string) {
		env := EnvName(flagName)
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			def = d
		}
		fs.DurationVar(p, flagName, def, usage+" ("+env+")")
	}

	str(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	str(&c.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://…); empty for the embedded SQLite database in --data-dir")
	str(&c.DataDir, "data-dir", "./data", "directory for the embedded database, the session key, uploaded files and the in-process sandbox")
	str(&c.SessionKey, "session-key", "", "secret for signing session cookies (at least 32 bytes); empty: generated once and kept in --data-dir")
	str(&c.TOTPKey, "totp-key", "", "secret sealing two-factor (TOTP) secrets in the database (at least 32 bytes); empty: derived from the session secret")
	boolean(&c.BehindTLS, "behind-tls", false, "the console is served over TLS (directly or by a proxy): cookies are marked Secure")
	str(&c.Timezone, "timezone", "Asia/Shanghai", "time zone in which times are entered and shown")
	str(&c.LogFormat, "log-format", "text", "log format: text or json")
	str(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	integer(&c.LoginMaxFailures, "login-max-failures", 5, "failed sign-ins in a row for one username before it is locked for a while")
	duration(&c.LoginLockout, "login-lockout", 15*time.Minute, "how long a username stays locked after too many failed sign-ins")
	integer(&c.LowStockThreshold, "low-stock-threshold", 1000, "available codes below which a stock is low on codes (each stock may set its own)")
	duration(&c.StockSyncInterval, "stock-sync-interval", 10*time.Minute, "how often stocks that can still change are read back from WeChat Pay in the background")
	str(&c.AlertWeComWebhook, "alert-wecom-webhook", "", "WeCom group robot webhook URL receiving alerts as markdown messages")
	str(&c.AlertWebhook, "alert-webhook", "", "URL receiving alerts (and, with --audit-stream, every audit entry) as JSON")
	str(&c.AlertLanguage, "alert-language", "zh-CN", "language of alerts sent to webhooks: zh-CN or en")
	boolean(&c.AuditStream, "audit-stream", false, "send every audit entry, in order, to the alert webhook (for a SIEM)")
	int64v(&c.UploadMaxBytes, "upload-max-bytes", 100<<20, "largest code file accepted, in bytes")
	float(&c.UploadRate, "upload-rate", 0, "code-upload requests per second to WeChat Pay, shared by all instances (0: 50 per second)")
	str(&c.FaultCrashAfterIntent, "fault-crash-after-intent", "", "testing only: exit right after recording the intent of this action (deactivate or presend), to test recovery")

	w := &c.WxPay
	str(&w.Mode, "wxpay-mode", ModeSandbox, "WeChat Pay mode: sandbox (in-process simulator) or live")
	str(&w.BaseURL, "wxpay-base-url", "https://api.mch.weixin.qq.com", "WeChat Pay API primary host")
	str(&w.FallbackURL, "wxpay-fallback-url", "https://api2.mch.weixin.qq.com", "WeChat Pay API fallback host")
	str(&w.MchID, "wxpay-mchid", "", "merchant ID (favor and busifavor stocks)")
	str(&w.MchSerial, "wxpay-mch-serial", "", "merchant API certificate serial number")
	str(&w.MchKeyFile, "wxpay-mch-key", "", "path of the merchant API private key (PEM)")
	str(&w.SPMchID, "wxpay-sp-mchid", "", "service provider merchant ID (product-coupon code upload)")
	str(&w.SPSerial, "wxpay-sp-serial", "", "service provider API certificate serial number")
	str(&w.SPKeyFile, "wxpay-sp-key", "", "path of the service provider API private key (PEM)")
	str(&w.BrandID, "wxpay-brand-id", "", "brand ID (deactivate, pre-send, product-coupon reads)")
	str(&w.BrandSerial, "wxpay-brand-serial", "", "brand API certificate serial number")
	str(&w.BrandKeyFile, "wxpay-brand-key", "", "path of the brand API private key (PEM)")
	str(&w.PubKeyID, "wxpay-pubkey-id", "", "WeChat Pay public key ID (PUB_KEY_ID_…)")
	str(&w.PubKeyFile, "wxpay-pubkey", "", "path of the WeChat Pay public key (PEM)")

	return c, func() error {
		if err := errors.Join(errs...); err != nil {
			return err
		}
		return c.Validate()
	}
}

// Load parses args (without the program name) into a Config; the remaining
// arguments are returned. --help prints every setting to out and returns
// flag.ErrHelp.
func Load(name string, args []string, getenv func(string) string, out io.Writer) (Config, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	c, check := Bind(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	return *c, fs.Args(), check()
}

// EnvName is the environment variable that supplies a flag's default.
func EnvName(flagName string) string {
	return "CONSOLE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Validate checks settings that would otherwise fail later and less clearly.
func (c Config) Validate() error {
	var errs []error
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone %q: %w", c.Timezone, err))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("database URL must start with postgres:// (leave it empty for the embedded database)"))
	}
	switch c.WxPay.Mode {
	case ModeSandbox:
	case ModeLive:
		w := c.WxPay
		for name, v := range map[string]string{"CONSOLE_WXPAY_PUBKEY_ID": w.PubKeyID, "CONSOLE_WXPAY_PUBKEY": w.PubKeyFile} {
			if v == "" {
				errs = append(errs, fmt.Errorf("%s is required in live mode", name))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("wxpay mode %q: must be sandbox or live", c.WxPay.Mode))
	}
	switch c.FaultCrashAfterIntent {
	case "", "deactivate", "presend":
	default:
		errs = append(errs, fmt.Errorf("fault-crash-after-intent %q: must be deactivate or presend", c.FaultCrashAfterIntent))
	}
	if c.UploadRate < 0 {
		errs = append(errs, errors.New("upload-rate must not be negative"))
	}
	if c.StockSyncInterval < time.Second {
		errs = append(errs, errors.New("stock-sync-interval must be at least 1s"))
	}
	if c.LowStockThreshold < 0 {
		errs = append(errs, errors.New("low-stock-threshold must not be negative"))
	}
	for name, u := range map[string]string{"alert-wecom-webhook": c.AlertWeComWebhook, "alert-webhook": c.AlertWebhook} {
		if u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			errs = append(errs, fmt.Errorf("%s must be an http(s) URL", name))
		}
	}
	if c.AuditStream && c.AlertWebhook == "" {
		errs = append(errs, errors.New("audit-stream needs alert-webhook"))
	}
	switch c.AlertLanguage {
	case "zh-CN", "en":
	default:
		errs = append(errs, fmt.Errorf("alert-language %q: must be zh-CN or en", c.AlertLanguage))
	}
	if c.TOTPKey != "" && len(c.TOTPKey) < 32 {
		errs = append(errs, errors.New("totp-key must be at least 32 bytes"))
	}
	if c.LoginMaxFailures < 1 {
		errs = append(errs, errors.New("login-max-failures must be at least 1"))
	}
	return errors.Join(errs...)
}

// Location is the configured time zone (validated by Load).
func (c Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// LogValue keeps the session key out of logs.
func (c Config) LogValue() slog.Value {
	db := "sqlite:" + c.DataDir
	if c.DatabaseURL != "" {
		db = "postgres"
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr), slog.String("database", db),
		slog.String("timezone", c.Timezone), slog.String("wxpay_mode", c.WxPay.Mode),
		slog.String("wxpay_base_url", c.WxPay.BaseURL),
	)
}
