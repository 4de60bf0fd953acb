package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"voucherconsole/internal/wxpay/sandbox"
)

// stats collects latencies per route and the errors.
type stats struct {
	mu      sync.Mutex
	latency map[string][]time.Duration
	errors  map[string]*failure
}

type failure struct {
	route   string
	status  int
	example string
	count   int
}

func newStats() *stats {
	return &stats{latency: map[string][]time.Duration{}, errors: map[string]*failure{}}
}

func (s *stats) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency, s.errors = map[string][]time.Duration{}, map[string]*failure{}
}

func (s *stats) observe(route string, d time.Duration) {
	s.mu.Lock()
	s.latency[route] = append(s.latency[route], d)
	s.mu.Unlock()
}

func (s *stats) fail(route string, status int, example string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := route + "\x00" + strconv.Itoa(status) + "\x00" + example
	f := s.errors[key]
	if f == nil {
		if len(s.errors) >= 100 { // bounded: the rest count under one line
			key = "\x00more"
			if f = s.errors[key]; f == nil {
				f = &failure{route: "(other errors)", example: "not listed"}
				s.errors[key] = f
			}
		} else {
			f = &failure{route: route, status: status, example: example}
			s.errors[key] = f
		}
	}
	f.count++
}

type routeStats struct {
	route         string
	n             int
	p50, p95, p99 time.Duration
	max           time.Duration
}

type result struct {
	users, instances int
	elapsed          time.Duration
	requests         int
	routes           []routeStats
	pages            routeStats // every HTML page view (GET, not downloads or progress)
	errors           []failure
	errorCount       int
	uploads          map[string]int
	memory           []memSample
	sandbox          *sandboxCheck
}

func percentiles(name string, ds []time.Duration) routeStats {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(len(ds)-1, int(p*float64(len(ds))))]
	}
	rs := routeStats{route: name, n: len(ds), p50: at(0.50), p95: at(0.95), p99: at(0.99)}
	if len(ds) > 0 {
		rs.max = ds[len(ds)-1]
	}
	return rs
}

// isPageView: a GET answered with an HTML page during the run, as opposed
// to downloads (CSV), the progress JSON and the sign-in page (before the
// clock starts).
func isPageView(route string) bool {
	return strings.HasPrefix(route, "GET ") && !strings.Contains(route, ".csv") && !strings.HasSuffix(route, "/progress") &&
		route != "GET /login"
}

func (s *stats) result(elapsed time.Duration) *result {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := &result{elapsed: elapsed}
	var pages []time.Duration
	for route, ds := range s.latency {
		if !strings.HasSuffix(route, " /login") { // sign-ins come before the clock starts
			res.requests += len(ds)
		}
		if isPageView(route) {
			pages = append(pages, ds...)
		}
		res.routes = append(res.routes, percentiles(route, ds))
	}
	sort.Slice(res.routes, func(i, j int) bool { return res.routes[i].route < res.routes[j].route })
	res.pages = percentiles("page views (all GET pages)", pages)
	for _, f := range s.errors {
		res.errors = append(res.errors, *f)
		res.errorCount += f.count
		if f.status == 0 {
			res.requests++ // failed without a reply: not in the latencies
		}
	}
	sort.Slice(res.errors, func(i, j int) bool { return res.errors[i].count > res.errors[j].count })
	return res
}

func (r *result) failed() bool {
	return r.errorCount > 0 || r.uploads["still sending"] > 0 || (r.sandbox != nil && !r.sandbox.ok())
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "\n%d users on %d instance(s), %s: %d requests, %.1f requests/s, %d errors\n\n",
		r.users, r.instances, r.elapsed.Round(time.Millisecond), r.requests, float64(r.requests)/r.elapsed.Seconds(), r.errorCount)
	fmt.Fprintf(w, "%-44s %8s %9s %9s %9s %9s\n", "route", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms")
	for _, rs := range append(r.routes, r.pages) {
		fmt.Fprintf(w, "%-44s %8d %9s %9s %9s %9s\n", rs.route, rs.n, ms(rs.p50), ms(rs.p95), ms(rs.p99), ms(rs.max))
	}
	if len(r.errors) > 0 {
		fmt.Fprintln(w, "\nerrors (5xx, unexpected 4xx, no reply):")
		for _, f := range r.errors {
			fmt.Fprintf(w, "  %6d × %s → %d %s\n", f.count, f.route, f.status, f.example)
		}
	}
	if len(r.uploads) > 0 {
		var parts []string
		for st, n := range r.uploads {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "\nuploads started: %s\n", strings.Join(parts, ", "))
	}
	for _, m := range r.memory {
		if m.err != "" {
			fmt.Fprintf(w, "pid %d: %s\n", m.pid, m.err)
			continue
		}
		fmt.Fprintf(w, "pid %d: peak RSS during the run %.1f MiB (VmHWM since start %.1f MiB)\n", m.pid, float64(m.peakKB)/1024, float64(m.hwmKB)/1024)
	}
	if s := r.sandbox; s != nil {
		if s.err != "" {
			fmt.Fprintf(w, "sandbox check failed: %s\n", s.err)
		} else {
			fmt.Fprintf(w, "sandbox: %d request numbers, %d resent with the same body, %d with different bodies; %d codes held twice\n",
				s.requestNos, s.resent, s.differing, s.doubleCodes)
		}
	}
	if r.failed() {
		fmt.Fprintln(w, "\nFAIL")
	} else {
		fmt.Fprintln(w, "\nOK")
	}
}

// memSample is one console process's memory over the run.
type memSample struct {
	pid           int
	peakKB, hwmKB int64
	err           string
}

// watchMemory samples VmRSS of each process every 100 ms until the returned
// function is called; that reports the peak seen and the kernel's VmHWM.
func watchMemory(ctx context.Context, pids []int) func() []memSample {
	samples := make([]memSample, len(pids))
	for i, p := range pids {
		samples[i].pid = p
	}
	if len(pids) == 0 {
		return func() []memSample { return nil }
	}
	var mu sync.Mutex
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	sample := func() {
		mu.Lock()
		defer mu.Unlock()
		for i := range samples {
			rss, hwm, err := readStatus(samples[i].pid)
			if err != nil {
				samples[i].err = err.Error()
				continue
			}
			samples[i].peakKB, samples[i].hwmKB = max(samples[i].peakKB, rss), hwm
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() []memSample {
		stop()
		<-done
		sample()
		return samples
	}
}

func readStatus(pid int) (rssKB, hwmKB int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rssKB = n
		case "VmHWM":
			hwmKB = n
		}
	}
	return rssKB, hwmKB, sc.Err()
}

// sandboxCheck is what the standalone sandbox saw.
type sandboxCheck struct {
	requestNos, resent, differing, doubleCodes int
	err                                        string
}

func (s *sandboxCheck) ok() bool { return s.err == "" && s.differing == 0 && s.doubleCodes == 0 }

// checkSandbox reads /_sandbox/requests (request numbers resent with a
// different body would be two different calls under one number) and
// /_sandbox/stocks (a stock holding a code twice).
func checkSandbox(ctx context.Context, base string) *sandboxCheck {
	out := &sandboxCheck{}
	var reqs struct{ Requests []sandbox.RequestInfo }
	var stocks struct{ Stocks []sandbox.StockInfo }
	for path, v := range map[string]any{"/_sandbox/requests": &reqs, "/_sandbox/stocks": &stocks} {
		if err := getJSON(ctx, base+path, v); err != nil {
			out.err = err.Error()
			return out
		}
	}
	out.requestNos = len(reqs.Requests)
	for _, r := range reqs.Requests {
		if r.Count > 1 {
			out.resent++
		}
		if !r.Identical {
			out.differing++
		}
	}
	for _, st := range stocks.Stocks {
		seen := make(map[string]bool, len(st.Codes))
		for _, c := range st.Codes {
			if seen[c] {
				out.doubleCodes++
			}
			seen[c] = true
		}
	}
	return out
}

func getJSON(ctx context.Context, u string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// progressOf reads an upload's progress outside the measurement.
func progressOf(ctx context.Context, c *client, path string) (string, bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"/progress", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var p struct {
		Status string `json:"status"`
		Ended  bool   `json:"ended"`
	}
	if json.NewDecoder(resp.Body).Decode(&p) != nil {
		return "", false
	}
	return p.Status, p.Ended
}
