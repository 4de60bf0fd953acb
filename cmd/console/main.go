// Command console is the WeChat Pay voucher console: a web console in which a
// brand's marketing team manages its voucher stocks.
//
//	console [serve]                          run the console (the default)
//	console migrate                          apply database migrations
//	console user add --username U --role R   add a user (password on standard input)
//	console audit verify                     check the audit log's hash chain
//	console backup --to FILE                 copy the SQLite database, online
//	console sandbox --addr A --dir D         run the WeChat Pay sandbox alone
//	console wxpay check                      one signed read per WeChat Pay account
//
// Every subcommand accepts the settings listed by --help, as flags or as
// CONSOLE_* environment variables.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"voucherconsole/internal/app"
	"voucherconsole/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Usage:
  console [serve] [settings]                                 run the console (default)
  console migrate [settings]                                 apply database migrations
  console user add --username U --role R [--role R2] [settings]
                                                             add a user; password on standard input
  console audit verify [settings]                            check the audit log's hash chain
  console backup --to FILE [settings]                        copy the SQLite database to FILE, online
  console sandbox --addr ADDR --dir DIR [fault flags]        run the WeChat Pay sandbox alone
  console wxpay check [settings]                             one signed read per configured WeChat Pay
                                                             account; exit 1 naming each that fails

Settings (flag, or the CONSOLE_* variable in parentheses):
`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "user" || cmd == "audit" || cmd == "wxpay" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "console %s: missing subcommand\n\n%s", cmd, usage)
			return 2
		}
		cmd, args = cmd+" "+args[0], args[1:]
	}

	fs := flag.NewFlagSet("console "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	// The sandbox is not a console: it takes its own flags only.
	cfg, check := &config.Config{LogFormat: "text", LogLevel: "info"}, func() error { return nil }
	if cmd != "sandbox" {
		cfg, check = config.Bind(fs, os.Getenv)
	}
	var (
		username string
		roles    stringList
		backupTo string
	)
	var sandboxFlags *sandboxOptions
	switch cmd {
	case "serve", "migrate", "audit verify", "wxpay check":
	case "user add":
		fs.StringVar(&username, "username", "", "username of the new user")
		fs.Var(&roles, "role", "role of the new user: operator, manager, support or admin (repeatable)")
	case "sandbox":
		sandboxFlags = bindSandboxFlags(fs)
	case "backup":
		fs.StringVar(&backupTo, "to", "", "file to write the backup to (must not exist)")
	default:
		fmt.Fprintf(stderr, "console: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := check(); err != nil {
		fmt.Fprintf(stderr, "console: invalid settings:\n%v\n", err)
		return 2
	}
	logger := app.NewLogger(*cfg, stderr)

	var err error
	switch cmd {
	case "serve":
		err = app.Serve(ctx, *cfg, logger, stderr) // the one-time admin password, plainly, beside the log
	case "migrate":
		err = app.Migrate(ctx, *cfg, logger, stdout)
	case "audit verify":
		var intact bool
		intact, err = app.VerifyAudit(ctx, *cfg, logger, stdout)
		if err == nil && !intact {
			return 1
		}
	case "user add":
		if username == "" || len(roles) == 0 {
			fmt.Fprintln(stderr, "console user add: --username and at least one --role are required")
			return 2
		}
		var password string
		password, err = readPassword(stdin)
		if err == nil {
			err = app.AddUser(ctx, *cfg, logger, username, roles, password)
		}
		if err == nil {
			fmt.Fprintf(stdout, "added user %s with roles %s\n", strings.ToLower(strings.TrimSpace(username)), roles.String())
		}
	case "wxpay check":
		var ok bool
		ok, err = app.CheckWxPay(ctx, *cfg, logger, stdout)
		if err == nil && !ok {
			return 1
		}
	case "sandbox":
		err = runSandbox(ctx, *sandboxFlags, logger, stdout)
	case "backup":
		err = app.Backup(ctx, *cfg, logger, backupTo, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "console %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// readPassword takes the first line of standard input, so that
// `printf '%s\n' "$PW" | console user add …` works and nothing is echoed.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on standard input")
	}
	return pw, nil
}
