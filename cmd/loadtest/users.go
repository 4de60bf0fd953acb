package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loopbackURL accepts only http(s) URLs on a loopback address: a load test
// pointed at anything else is refused.
func loopbackURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", raw)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("%q is not a loopback address: loadtest only drives consoles on this machine", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Role names as the console spells them.
const (
	roleOperator = "operator"
	roleManager  = "manager"
	roleSupport  = "support"
	roleAdmin    = "admin"
)

type account struct {
	username, password, role string
}

// roleFor spreads roles over the crowd: of every ten users, four operators,
// three managers, two support staff and one admin (at least one operator
// and one manager in any crowd of two or more).
func roleFor(i int) string {
	switch i % 10 {
	case 0, 2, 5, 8:
		return roleOperator
	case 1, 4, 7:
		return roleManager
	case 3, 6:
		return roleSupport
	default:
		return roleAdmin
	}
}

func prepareUsers(ctx context.Context, o options, log io.Writer) ([]account, error) {
	if o.usersFile != "" {
		return readUsersFile(o.usersFile)
	}
	bin := o.console
	if bin == "" {
		dir, err := os.MkdirTemp("", "loadtest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "console")
		fmt.Fprintln(log, "building ./cmd/console for `console user add` …")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/console")
		build.Stderr = log
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build the console (run from the repository, or pass -console or -users-file): %w", err)
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	run := strconv.FormatInt(time.Now().Unix()%100000, 36)
	password := "lt-" + hex.EncodeToString(rnd[:]) + "-password"
	accounts := make([]account, o.users)
	for i := range accounts {
		role := roleFor(i)
		accounts[i] = account{username: fmt.Sprintf("lt-%s-%s-%d", run, role, i), password: password, role: role}
	}
	fmt.Fprintf(log, "adding %d users with %s user add …\n", len(accounts), bin)
	// A few at a time: each hashes a password (argon2id) and opens the
	// database.
	errs := make(chan error, len(accounts))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, a := range accounts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(ctx, bin, "user", "add", "--username", a.username, "--role", a.role)
			cmd.Stdin = strings.NewReader(a.password + "\n")
			cmd.Env = append(os.Environ(), "CONSOLE_LOG_LEVEL=error")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("user add %s: %v: %s", a.username, err, strings.TrimSpace(string(out)))
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return accounts, nil
}

func readUsersFile(path string) ([]account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ",")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s:%d: want username,password,role", path, n)
		}
		a := account{username: strings.TrimSpace(parts[0]), password: parts[1], role: strings.TrimSpace(parts[2])}
		switch a.role {
		case roleOperator, roleManager, roleSupport, roleAdmin:
		default:
			return nil, fmt.Errorf("%s:%d: unknown role %q", path, n, a.role)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New(path + ": no users")
	}
	return out, nil
}
