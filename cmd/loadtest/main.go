// Command loadtest drives running consoles (on PostgreSQL, in live mode
// against a standalone sandbox) as a crowd of signed-in users of every role
// for a while, then prints requests per second, the errors (5xx and
// unexpected 4xx), p50/p95/p99 per route and the consoles' peak memory.
//
//	go run ./cmd/loadtest -url http://127.0.0.1:8080 -users 64 -duration 60s -pid $(pgrep -n console)
//
// It talks only to loopback addresses, and stops at -duration or
// -max-requests, whichever comes first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `loadtest drives running consoles as a crowd of users of every role.

  go run ./cmd/loadtest -url URL[,URL…] -users N -duration D [-pid PID[,PID…]]

Users: without -users-file, loadtest first adds N users (lt-<run>-<role>-<n>,
a random password, one role each: operators, managers, support, admins) with
the console's own "console user add" subcommand, run with this process's
environment: run it where CONSOLE_DATABASE_URL names the consoles' database
(-console names the console binary; by default it is built from ./cmd/console).
With -users-file FILE, it signs in the users listed there instead, one per
line: username,password,role (role: operator, manager, support or admin);
with fewer lines than -users, lines are reused, each use a session of its own.
Sign-ins come first, before the clock starts; users whose role requires
two-factor sign-in cannot be used.

Users are split between the -url values (several instances sharing one
database). Each signs in through /login as a browser would (same-origin
requests: Origin and Sec-Fetch-Site headers) and, until the duration ends,
does what such a user does: browse, search and filter stocks, open stock
pages; operators and managers also check and send small code files,
follow them, create voucher stocks (paced to WeChat Pay's 60 per minute),
register stocks, issue pre-send tokens and deactivate a paused stock;
managers page, filter and export the audit log; admins list users.

Setup registers the sandbox's demo stocks (already registered ones are
fine). At the end it waits for the uploads it started to end and, with
-sandbox (default: $CONSOLE_WXPAY_BASE_URL, as sandbox.env sets it), checks
on /_sandbox/requests that no request number was sent with two bodies and
that no code is held twice.

Exit status: 0 with no errors, 1 with errors, 2 on bad arguments.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
	}
	os.Exit(code)
}

// Bounds: a run never exceeds these, whatever the flags ask.
const (
	maxUsers    = 1000
	maxDuration = 30 * time.Minute
)

type options struct {
	urls        []string
	users       int
	duration    time.Duration
	pids        []int
	usersFile   string
	console     string
	sandbox     string
	think       time.Duration
	maxRequests int64
	timeout     time.Duration
	codes       int
	wait        time.Duration
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	var urls, pids listFlag
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.Var(&urls, "url", "console base URL; repeat it or give a comma list to split users between instances (loopback only)")
	fs.IntVar(&o.users, "users", 8, fmt.Sprintf("simultaneous users (at most %d)", maxUsers))
	fs.DurationVar(&o.duration, "duration", 10*time.Second, fmt.Sprintf("how long the crowd works (at most %s)", maxDuration))
	fs.Var(&pids, "pid", "process ID of a console whose peak RSS to report (/proc); repeat or comma list")
	fs.StringVar(&o.usersFile, "users-file", "", "sign in these users (username,password,role per line) instead of adding them")
	fs.StringVar(&o.console, "console", "", "console binary for `user add` (default: built from ./cmd/console)")
	fs.StringVar(&o.sandbox, "sandbox", getenv("CONSOLE_WXPAY_BASE_URL"), "standalone sandbox base URL, to check its request log afterwards (empty: no check)")
	fs.DurationVar(&o.think, "think", 300*time.Millisecond, "mean pause between a user's actions")
	fs.Int64Var(&o.maxRequests, "max-requests", 2_000_000, "stop after this many requests")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.IntVar(&o.codes, "codes", 300, "codes per uploaded file (at most 5,000)")
	fs.DurationVar(&o.wait, "wait", 2*time.Minute, "how long to wait at the end for the uploads started to end")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(urls) == 0 {
		return o, errors.New("-url is required")
	}
	for _, u := range urls {
		base, err := loopbackURL(u)
		if err != nil {
			return o, err
		}
		o.urls = append(o.urls, base)
	}
	if o.sandbox != "" {
		base, err := loopbackURL(o.sandbox)
		if err != nil {
			return o, fmt.Errorf("-sandbox: %w", err)
		}
		o.sandbox = base
	}
	for _, p := range pids {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-pid %q is not a process ID", p)
		}
		o.pids = append(o.pids, n)
	}
	switch {
	case o.users < 1 || o.users > maxUsers:
		return o, fmt.Errorf("-users must be 1–%d", maxUsers)
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-duration must be above 0 and at most %s", maxDuration)
	case o.maxRequests < 1:
		return o, errors.New("-max-requests must be at least 1")
	case o.codes < 1 || o.codes > 5000:
		return o, errors.New("-codes must be 1–5000")
	case o.timeout <= 0 || o.think < 0 || o.wait < 0:
		return o, errors.New("-timeout must be above 0, -think and -wait not negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	accounts, err := prepareUsers(ctx, o, stderr)
	if err != nil {
		return 1, err
	}
	r := newRunner(o, accounts, stderr)
	if err := r.setup(ctx); err != nil {
		return 1, fmt.Errorf("setup: %w", err)
	}
	res := r.run(ctx)
	res.print(stdout)
	if res.failed() {
		return 1, nil
	}
	return 0, nil
}
