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
	"net"
	"strconv"
	"strings"
	"time"
)

// WxPay holds the WeChat Pay settings. Key fields are file paths: the keys
// themselves are read by the wxpay package and never kept here.
//
// Each account (merchant, service provider, brand) verifies WeChat Pay's
// replies with its own WeChat Pay public key (…PubKeyID + …PubKeyFile), with
// platform certificates downloaded with its APIv3 key (…APIv3KeyFile), or
// with both during WeChat Pay's migration; PubKeyID/PubKeyFile serve an
// account with no setting of its own.
type WxPay struct {
	Mode        string // "sandbox" (in-process simulator) or "live"
	BaseURL     string
	FallbackURL string

	MchID, MchSerial, MchKeyFile       string
	SPMchID, SPSerial, SPKeyFile       string
	BrandID, BrandSerial, BrandKeyFile string
	PubKeyID, PubKeyFile               string

	MchPubKeyID, MchPubKeyFile, MchAPIv3KeyFile       string
	SPPubKeyID, SPPubKeyFile, SPAPIv3KeyFile          string
	BrandPubKeyID, BrandPubKeyFile, BrandAPIv3KeyFile string

	// CertRefresh is how often platform certificates are downloaded (by
	// one instance for all).
	CertRefresh time.Duration
}

// WxPayAccount is one account's settings, with the names of the variables
// that set them, for messages.
type WxPayAccount struct {
	Name, Env                          string // "merchant", "MCH"
	ID, PubKeyID, PubKeyFile, APIv3Key string
}

// Accounts lists the three accounts' verification settings.
func (w WxPay) Accounts() []WxPayAccount {
	return []WxPayAccount{
		{"merchant", "MCH", w.MchID, w.MchPubKeyID, w.MchPubKeyFile, w.MchAPIv3KeyFile},
		{"service provider", "SP", w.SPMchID, w.SPPubKeyID, w.SPPubKeyFile, w.SPAPIv3KeyFile},
		{"brand", "BRAND", w.BrandID, w.BrandPubKeyID, w.BrandPubKeyFile, w.BrandAPIv3KeyFile},
	}
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

	// Approvals is the maker–checker policy's starting value, e.g.
	// "deactivate,create:50000,upload:100000" (empty: nothing needs a
	// second person); ApprovalTTL is how long a request waits.
	Approvals   string
	ApprovalTTL time.Duration

	LoginMaxFailures int
	LoginLockout     time.Duration
	// LoginMaxClientFailures is the failed sign-ins from one client address
	// (whatever usernames) before the address is locked for LoginLockout.
	LoginMaxClientFailures int
	// LoginMaxHashes caps the password hashes computed at once: each takes
	// 19 MiB, and a flood of sign-ins must not exhaust memory.
	LoginMaxHashes int

	// SessionIdleTimeout ends a session not used for this long;
	// SessionLifetime ends any session this long after sign-in.
	SessionIdleTimeout time.Duration
	SessionLifetime    time.Duration

	// TrustedProxies are the addresses or CIDR ranges of reverse proxies
	// whose X-Forwarded-For is believed; empty: none, the client address is
	// the connection's.
	TrustedProxies string
	// MetricsToken, when set, is the bearer token /metrics requires.
	// MetricsAddr, when set, serves /metrics on its own listener instead
	// of the console's address.
	MetricsToken string
	MetricsAddr  string

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
	str(&c.Approvals, "approvals", "", "actions that need a second person's approval, e.g. deactivate,create:50000,upload:100000 (every deactivation; stocks budgeted at ¥50,000 or more; files of 100,000 codes or more); admins may change it on /admin/approvals")
	duration(&c.ApprovalTTL, "approval-ttl", 24*time.Hour, "how long an approval request waits for a decision before it expires")
	boolean(&c.BehindTLS, "behind-tls", false, "the console is served over TLS (directly or by a proxy): cookies are marked Secure")
	str(&c.Timezone, "timezone", "Asia/Shanghai", "time zone in which times are entered and shown")
	str(&c.LogFormat, "log-format", "text", "log format: text or json")
	str(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	integer(&c.LoginMaxFailures, "login-max-failures", 5, "failed sign-ins in a row for one username before it is locked for a while")
	duration(&c.LoginLockout, "login-lockout", 15*time.Minute, "how long a username stays locked after too many failed sign-ins")
	integer(&c.LoginMaxClientFailures, "login-max-client-failures", 20, "failed sign-ins from one client address (any usernames) before the address is locked for --login-lockout")
	integer(&c.LoginMaxHashes, "login-max-hashes", 4, "password hashes computed at once (each takes 19 MiB); further sign-ins wait")
	duration(&c.SessionIdleTimeout, "session-idle-timeout", time.Hour, "a session unused for this long ends")
	duration(&c.SessionLifetime, "session-lifetime", 12*time.Hour, "a session ends this long after sign-in, however active")
	str(&c.TrustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed; empty: none")
	str(&c.MetricsToken, "metrics-token", "", "bearer token /metrics requires (empty: none)")
	str(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this address only, not on --addr (empty: on --addr)")
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
	str(&w.PubKeyID, "wxpay-pubkey-id", "", "WeChat Pay public key ID (PUB_KEY_ID_…) of every account without a public key or APIv3 key of its own")
	str(&w.PubKeyFile, "wxpay-pubkey", "", "path of that WeChat Pay public key (PEM)")
	for _, a := range []struct {
		flag, what         string
		id, file, apiv3key *string
	}{
		{"mch", "merchant", &w.MchPubKeyID, &w.MchPubKeyFile, &w.MchAPIv3KeyFile},
		{"sp", "service provider", &w.SPPubKeyID, &w.SPPubKeyFile, &w.SPAPIv3KeyFile},
		{"brand", "brand", &w.BrandPubKeyID, &w.BrandPubKeyFile, &w.BrandAPIv3KeyFile},
	} {
		str(a.id, "wxpay-"+a.flag+"-pubkey-id", "", "the "+a.what+"'s own WeChat Pay public key ID (PUB_KEY_ID_…)")
		str(a.file, "wxpay-"+a.flag+"-pubkey", "", "path of the "+a.what+"'s own WeChat Pay public key (PEM)")
		str(a.apiv3key, "wxpay-"+a.flag+"-apiv3-key", "", "path of a file holding the "+a.what+"'s APIv3 key: its replies are verified with platform certificates (with a public key too: both, during WeChat Pay's migration)")
	}
	duration(&w.CertRefresh, "wxpay-cert-refresh", 12*time.Hour, "how often WeChat Pay platform certificates are downloaded (once for all instances sharing the database)")

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
		errs = append(errs, c.WxPay.validateLive()...)
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
	if c.ApprovalTTL <= 0 {
		errs = append(errs, errors.New("approval-ttl must be positive"))
	}
	if c.LoginMaxFailures < 1 {
		errs = append(errs, errors.New("login-max-failures must be at least 1"))
	}
	if c.LoginMaxClientFailures < 1 {
		errs = append(errs, errors.New("login-max-client-failures must be at least 1"))
	}
	if c.LoginMaxHashes < 1 {
		errs = append(errs, errors.New("login-max-hashes must be at least 1"))
	}
	if c.SessionIdleTimeout <= 0 || c.SessionLifetime <= 0 {
		errs = append(errs, errors.New("session-idle-timeout and session-lifetime must be positive"))
	}
	if _, err := ParseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParseProxies splits a trusted-proxies setting into addresses and CIDR
// ranges, refusing anything else (a typo must not trust the world).
func ParseProxies(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return nil, fmt.Errorf("trusted-proxies: %q is neither an IP address nor a CIDR range", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// validateLive checks that every configured account can verify replies:
// with its own public key, its APIv3 key, or the shared public key.
func (w WxPay) validateLive() []error {
	var errs []error
	if (w.PubKeyID == "") != (w.PubKeyFile == "") {
		errs = append(errs, errors.New("CONSOLE_WXPAY_PUBKEY_ID and CONSOLE_WXPAY_PUBKEY go together"))
	}
	anyVerifier := w.PubKeyFile != ""
	for _, a := range w.Accounts() {
		if (a.PubKeyID == "") != (a.PubKeyFile == "") {
			errs = append(errs, fmt.Errorf("CONSOLE_WXPAY_%s_PUBKEY_ID and CONSOLE_WXPAY_%s_PUBKEY go together", a.Env, a.Env))
		}
		own := a.PubKeyFile != "" || a.APIv3Key != ""
		anyVerifier = anyVerifier || own
		if a.ID != "" && !own && w.PubKeyFile == "" {
			errs = append(errs, fmt.Errorf("the %s has no way to verify WeChat Pay's replies: set CONSOLE_WXPAY_%s_PUBKEY_ID and CONSOLE_WXPAY_%s_PUBKEY, or CONSOLE_WXPAY_%s_APIV3_KEY (or CONSOLE_WXPAY_PUBKEY_ID and CONSOLE_WXPAY_PUBKEY)",
				a.Name, a.Env, a.Env, a.Env))
		}
	}
	if !anyVerifier {
		errs = append(errs, errors.New("live mode needs a WeChat Pay public key (CONSOLE_WXPAY_PUBKEY_ID and CONSOLE_WXPAY_PUBKEY, or per account CONSOLE_WXPAY_MCH_PUBKEY_ID…) or an APIv3 key (CONSOLE_WXPAY_MCH_APIV3_KEY…)"))
	}
	if w.CertRefresh < time.Minute {
		errs = append(errs, errors.New("wxpay-cert-refresh must be at least 1m"))
	}
	return errs
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
		slog.String("trusted_proxies", c.TrustedProxies), slog.String("metrics_addr", c.MetricsAddr),
		slog.Bool("metrics_token", c.MetricsToken != ""),
	)
}
