package uploads_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/codefile"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

var reportText = uploads.ReportText{
	Header: []string{"row", "code", "reason_code", "reason", "detail"},
	Reason: func(l uploads.ReportLine) (string, string) { return l.Reason, l.WxCode + " " + l.WxMessage + l.Detail },
}

// reportLines reads the report CSV.
func reportLines(t testing.TB, svc *uploads.Service, u *uploads.Upload) [][]string {
	t.Helper()
	var buf bytes.Buffer
	if err := svc.WriteReport(context.Background(), u, &buf, reportText); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\xEF\xBB\xBF")) {
		t.Fatal("report has no UTF-8 byte order mark")
	}
	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes()[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:]
}

// assertReconciles checks the report's arithmetic and that the CSV lists
// exactly the codes that did not upload.
func assertReconciles(t testing.TB, svc *uploads.Service, u *uploads.Upload) map[string]int {
	t.Helper()
	if !u.Reconciles() {
		t.Fatalf("report does not reconcile: %+v", u)
	}
	lines := reportLines(t, svc, u)
	if got, want := int64(len(lines)), u.RowsRead-u.CodesUploaded; got != want {
		t.Fatalf("report lists %d codes, want rows read − uploaded = %d", got, want)
	}
	byReason := map[string]int{}
	prev := int64(0)
	for _, l := range lines {
		byReason[l[2]]++
		var row int64
		for _, c := range l[0] {
			row = row*10 + int64(c-'0')
		}
		if row < prev {
			t.Fatalf("report out of row order at row %d", row)
		}
		prev = row
	}
	if got := int64(byReason[string(codefile.ReasonDuplicate)]); got != u.DuplicateCount {
		t.Fatalf("report lists %d duplicates, summary %d", got, u.DuplicateCount)
	}
	if got := int64(byReason[uploads.ReasonKnown] + byReason[uploads.ReasonWxExists]); got != u.AlreadyOnWeChat() {
		t.Fatalf("report lists %d already there, summary %d", got, u.AlreadyOnWeChat())
	}
	if got := int64(byReason[uploads.ReasonWxFailed]); got != u.CodesFailed {
		t.Fatalf("report lists %d failed, summary %d", got, u.CodesFailed)
	}
	return byReason
}

// assertInventory checks that the sandbox holds each of want exactly once,
// and that no request number came with two different bodies.
func assertInventory(t testing.TB, sb *sandboxServer, stockID string, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, c := range sb.codesOf(t, stockID) {
		seen[c]++
	}
	for c, n := range seen {
		if n != 1 {
			t.Fatalf("sandbox holds code %s %d times", c, n)
		}
	}
	for _, c := range want {
		if seen[c] != 1 {
			t.Fatalf("sandbox does not hold code %s", c)
		}
	}
	for _, r := range sb.Requests() {
		if !r.Identical {
			t.Fatalf("request number %s came with different bodies", r.RequestNo)
		}
	}
}

// Acceptance 2: a 50,000-code file with 1% invalid and 1% duplicate codes
// ends with a report that reconciles and a sandbox inventory holding each
// valid code exactly once — on both databases. A code WeChat Pay has
// already counts as already on WeChat.
func TestUpload50k(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		sb := newSandbox(t, sandbox.Options{})
		st := productStock(t, db, sb)
		in := startInstance(t, db, sb, envOptions{})
		data, valid := codeFile("C50K", 50_000, 100, 100, "")
		// One code the stock has already (the sandbox's demo data).
		data = append(data, "LATTE-SPRING-0001\r\n"...)

		checkStart := time.Now()
		u := check(t, in.svc, st, "codes.csv", data)
		t.Logf("checked in %s", time.Since(checkStart).Round(time.Millisecond))
		if u.Status != uploads.StatusChecked || u.RowsRead != 50_001 || u.InvalidCount != 500 || u.DuplicateCount != 500 ||
			u.ValidCount != int64(len(valid))+1 || u.KnownCount != 0 || u.BatchesTotal != (u.CodesTotal+199)/200 {
			t.Fatalf("check: %+v", u)
		}
		if sent := len(sb.Requests()); sent != 0 {
			t.Fatalf("the check sent %d requests", sent)
		}
		if err := in.svc.Start(context.Background(), audit.Context{Actor: "olivia"}, u.ID); err != nil {
			t.Fatal(err)
		}
		if err := in.svc.Start(context.Background(), audit.Context{Actor: "olivia"}, u.ID); !errors.Is(err, uploads.ErrWrongState) {
			t.Fatalf("second start: %v", err)
		}
		started := time.Now()
		u = waitEnded(t, in.svc, u.ID, 90*time.Second)
		t.Logf("sent %d batches in %s", u.BatchesTotal, time.Since(started).Round(time.Millisecond))
		if u.Status != uploads.StatusFinished || u.CodesUploaded != int64(len(valid)) || u.CodesExist != 1 || u.CodesFailed != 0 {
			t.Fatalf("finished: %+v", u)
		}
		assertInventory(t, sb, sandbox.SeedStockSending, valid)
		if n := len(sb.codesOf(t, sandbox.SeedStockSending)); n != len(valid)+8 {
			t.Fatalf("sandbox holds %d codes, want %d + 8 demo codes", n, len(valid))
		}
		reqs := sb.Requests()
		if int64(len(reqs)) != u.BatchesTotal {
			t.Fatalf("%d request numbers for %d batches", len(reqs), u.BatchesTotal)
		}
		for _, r := range reqs {
			if r.Count != 1 {
				t.Fatalf("request %s sent %d times without faults", r.RequestNo, r.Count)
			}
		}
		byReason := assertReconciles(t, in.svc, u)
		if byReason[uploads.ReasonWxExists] != 1 {
			t.Fatalf("reasons %v", byReason)
		}
		// The stock's counts are read back once the upload ends.
		want := int64(len(valid)) + 8
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var fresh models.Stock
			db.Gorm.Take(&fresh, st.ID)
			if fresh.TotalCount != nil && *fresh.TotalCount == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stock total count not updated to %d after the upload", want)
			}
		}

		// Part of the file again: its codes are known to the console now.
		again := strings.Join(valid[:1000], "\n") + "\nLATTE-SPRING-0001\n"
		u2 := check(t, in.svc, st, "again.csv", []byte(again))
		if u2.KnownCount != 1001 || u2.CodesTotal != 0 || u2.BatchesTotal != 0 {
			t.Fatalf("second check: %+v", u2)
		}
		if err := in.svc.Start(context.Background(), audit.Context{Actor: "olivia"}, u2.ID); err != nil {
			t.Fatal(err)
		}
		u2, _ = in.svc.Get(context.Background(), u2.ID)
		if u2.Status != uploads.StatusFinished {
			t.Fatalf("nothing to send: %s", u2.Status)
		}
		if assertReconciles(t, in.svc, u2)[uploads.ReasonKnown] != 1001 {
			t.Fatal("known codes not in the report")
		}

		// The audit trail: checked, started, finished with the counts.
		var actions []string
		db.Gorm.Model(&audit.Entry{}).Where("target_type = ? AND target_id = ?", audit.TargetUpload, "1").Order("seq").Pluck("action", &actions)
		if strings.Join(actions, ",") != "upload.check,upload.start,upload.finish" {
			t.Fatalf("audit trail %v", actions)
		}
		if res, err := audit.Verify(context.Background(), db.Gorm); err != nil || !res.Intact {
			t.Fatalf("audit chain: %v %v", res, err)
		}
	})
}

// Acceptance 4: with the sandbox failing 20% with 500 and 10% with 429 (and
// dropping a few connections), the same file completes with the same final
// state.
func TestUploadUnderFaults(t *testing.T) {
	db := testdb.SQLite(t)
	sb := newSandbox(t, sandbox.Options{Faults: sandbox.Faults{FailRate: 0.2, ThrottleRate: 0.1, DropRate: 0.02}})
	st := productStock(t, db, sb)
	in := startInstance(t, db, sb, envOptions{})
	data, valid := codeFile("FLT", 20_000, 100, 100, "code\r\n")
	u := check(t, in.svc, st, "codes.csv", data)
	if err := in.svc.Start(context.Background(), audit.Context{Actor: "olivia"}, u.ID); err != nil {
		t.Fatal(err)
	}
	u = waitEnded(t, in.svc, u.ID, 120*time.Second)
	if u.Status != uploads.StatusFinished || u.CodesUploaded != int64(len(valid)) || u.CodesFailed != 0 || u.CodesExist != 0 {
		t.Fatalf("finished under faults: %+v", u)
	}
	assertInventory(t, sb, sandbox.SeedStockSending, valid)
	assertReconciles(t, in.svc, u)
	retried := 0
	for _, r := range sb.Requests() {
		if r.Count > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no request was retried: the faults did not apply")
	}
	t.Logf("%d of %d batches needed more than one request", retried, u.BatchesTotal)
}

// A merchant (busifavor) stock: its codes may hold spaces and -*\/=|, and a
// header row names the column 券码.
func TestUploadBusifavor(t *testing.T) {
	db := testdb.SQLite(t)
	sb := newSandbox(t, sandbox.Options{})
	st := registerStock(t, db, sb, models.KindBusifavor, "", sandbox.SeedBusifavorUpload)
	in := startInstance(t, db, sb, envOptions{})
	data := []byte("序号,券码\r\n1,AB 12/34\r\n2,X=Y|Z*\r\n3,bad_underscore\r\n4,AB 12/34\r\n5,\\back\\\r\n")
	u := check(t, in.svc, st, "商家券.csv", data)
	if u.ValidCount != 3 || u.InvalidCount != 1 || u.DuplicateCount != 1 || !u.HasHeader {
		t.Fatalf("check: %+v", u)
	}
	if err := in.svc.Start(context.Background(), audit.Context{Actor: "olivia"}, u.ID); err != nil {
		t.Fatal(err)
	}
	u = waitEnded(t, in.svc, u.ID, 30*time.Second)
	if u.Status != uploads.StatusFinished || u.CodesUploaded != 3 {
		t.Fatalf("finished: %+v", u)
	}
	assertInventory(t, sb, sandbox.SeedBusifavorUpload, []string{"AB 12/34", "X=Y|Z*", `\back\`})
	assertReconciles(t, in.svc, u)
}

// A batch WeChat Pay refuses for good is recorded with its code and message
// and the job moves on; once the cause is gone, resuming resends that batch
// with its own request number.
func TestDefinitiveFailureAndResume(t *testing.T) {
	db := testdb.SQLite(t)
	sb := newSandbox(t, sandbox.Options{})
	st := productStock(t, db, sb)
	in := startInstance(t, db, sb, envOptions{})
	data, valid := codeFile("DEF", 1000, 0, 0, "")
	u := check(t, in.svc, st, "codes.csv", data)
	// WeChat Pay refuses batch 3 for good.
	var b3 uploads.Batch
	db.Gorm.Where("upload_id = ? AND batch_no = 3", u.ID).Take(&b3)
	ctx := context.Background()
	wx := &switchingUploader{Uploader: in.svc.WX}
	wx.bad.Store(b3.RequestNo)
	in.svc.WX = wx
	if err := in.svc.Start(ctx, audit.Context{Actor: "olivia"}, u.ID); err != nil {
		t.Fatal(err)
	}
	u = waitEnded(t, in.svc, u.ID, 30*time.Second)
	if u.Status != uploads.StatusFinished || u.CodesFailed != 200 || u.BatchesFailed != 1 || u.CodesUploaded != 800 {
		t.Fatalf("after a refused batch: %+v", u)
	}
	failures, err := in.svc.WxFailures(ctx, u.ID)
	if err != nil || len(failures) != 1 || failures[0].Code != "NOT_FOUND" || failures[0].Codes != 200 {
		t.Fatalf("failures %+v %v", failures, err)
	}
	byReason := assertReconciles(t, in.svc, u)
	if byReason[uploads.ReasonWxFailed] != 200 {
		t.Fatalf("reasons %v", byReason)
	}
	if !uploads.CanResume(u) {
		t.Fatal("finished upload with a refused batch cannot be resumed")
	}
	wx.bad.Store("")
	if err := in.svc.Resume(ctx, audit.Context{Actor: "olivia"}, u.ID); err != nil {
		t.Fatal(err)
	}
	u = waitEnded(t, in.svc, u.ID, 30*time.Second)
	if u.Status != uploads.StatusFinished || u.CodesFailed != 0 || u.CodesUploaded != 1000 || u.BatchesFailed != 0 {
		t.Fatalf("after resume: %+v", u)
	}
	assertInventory(t, sb, sandbox.SeedStockSending, valid)
	assertReconciles(t, in.svc, u)
	if err := in.svc.Resume(ctx, audit.Context{Actor: "olivia"}, u.ID); !errors.Is(err, uploads.ErrWrongState) {
		t.Fatalf("resume of a complete upload: %v", err)
	}
}

// switchingUploader refuses one request number as WeChat Pay would for an
// unknown stock.
type switchingUploader struct {
	uploads.Uploader
	bad atomic.Value // request number
}

func (s *switchingUploader) UploadProductCouponCodes(ctx context.Context, pcid, stockID string, req wxpay.UploadProductCouponCodesRequest) (*wxpay.UploadProductCouponCodesReply, error) {
	if req.OutRequestNo == s.bad.Load().(string) {
		// As WeChat Pay answers for a stock it does not know (document 000).
		return nil, &wxpay.APIError{StatusCode: 404, Code: "NOT_FOUND", Message: "未找到 stock_id 对应的商品券批次", RequestID: "TEST-REQUEST-ID"}
	}
	return s.Uploader.UploadProductCouponCodes(ctx, pcid, stockID, req)
}

// Cancel stops after the batches in flight; the upload can be resumed and
// then finishes with every code once.
func TestCancelAndResume(t *testing.T) {
	db := testdb.SQLite(t)
	sb := newSandbox(t, sandbox.Options{})
	st := productStock(t, db, sb)
	in := startInstance(t, db, sb, envOptions{rate: wxpay.PerSecond(20)})
	data, valid := codeFile("CNL", 20_000, 0, 0, "")
	u := check(t, in.svc, st, "codes.csv", data)
	ctx := context.Background()
	if err := in.svc.Start(ctx, audit.Context{Actor: "olivia"}, u.ID); err != nil {
		t.Fatal(err)
	}
	for {
		cur, _ := in.svc.Get(ctx, u.ID)
		if cur.BatchesSent >= 25 {
			// The progress shows the rate (20 batches of 200 codes a
			// second) and the time left.
			p, err := in.svc.Progress(ctx, cur)
			if err != nil || !p.Active || p.Rate <= 0 || p.ETASeconds < 1 || p.Percent <= 0 {
				t.Fatalf("progress while sending: %+v %v", p, err)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped, err := in.svc.Cancel(ctx, audit.Context{Actor: "olivia"}, u.ID)
	if err != nil || stopped {
		t.Fatalf("cancel while sending: stopped=%v %v", stopped, err)
	}
	u = waitEnded(t, in.svc, u.ID, 30*time.Second)
	// It stops within a heartbeat or so, plus the batches in flight: far
	// from the 100 batches of the file.
	if u.Status != uploads.StatusCancelled || u.BatchesSent >= 50 || u.NotSent() == 0 {
		t.Fatalf("cancelled: %+v", u)
	}
	byReason := assertReconciles(t, in.svc, u)
	if int64(byReason[uploads.ReasonNotSent]) != u.NotSent() {
		t.Fatalf("reasons %v, not sent %d", byReason, u.NotSent())
	}
	sentBefore := len(sb.Requests())
	time.Sleep(300 * time.Millisecond)
	if len(sb.Requests()) != sentBefore {
		t.Fatal("requests sent after the cancel took effect")
	}
	if err := in.svc.Resume(ctx, audit.Context{Actor: "olivia"}, u.ID); err != nil {
		t.Fatal(err)
	}
	u = waitEnded(t, in.svc, u.ID, 60*time.Second)
	if u.Status != uploads.StatusFinished || u.CodesUploaded != int64(len(valid)) {
		t.Fatalf("resumed: %+v", u)
	}
	assertInventory(t, sb, sandbox.SeedStockSending, valid)
}

// A file that cannot be used leaves nothing behind and says why.
func TestCheckRefusals(t *testing.T) {
	db := testdb.SQLite(t)
	sb := newSandbox(t, sandbox.Options{})
	st := productStock(t, db, sb)
	in := startInstance(t, db, sb, envOptions{noStart: true})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		data []byte
		max  int64
		want func(error) bool
	}{
		{"empty", nil, 1 << 20, func(err error) bool { return errors.Is(err, uploads.ErrEmptyFile) }},
		{"header only", []byte("code\r\n"), 1 << 20, func(err error) bool { return errors.Is(err, uploads.ErrNoRows) }},
		{"binary", []byte("A1\x00\x01\x02\n"), 1 << 20, func(err error) bool { return errors.Is(err, codefile.ErrNotText) }},
		{"no code column", []byte("a,b\n1,2\n"), 1 << 20, func(err error) bool { return errors.Is(err, codefile.ErrNoCodeColumn) }},
		{"too large", bytes.Repeat([]byte("A1\n"), 100), 50, func(err error) bool {
			var tl *uploads.TooLargeError
			return errors.As(err, &tl) && tl.Max == 50
		}},
	} {
		_, err := in.svc.Check(ctx, audit.Context{Actor: "olivia"}, uploads.CheckInput{Stock: st, FileName: tc.name, Body: bytes.NewReader(tc.data), MaxBytes: tc.max})
		if !tc.want(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	var n int64
	db.Gorm.Model(&uploads.Upload{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d uploads left behind by refused files", n)
	}
	// A stock whose codes WeChat Pay generates takes none.
	wst := registerStock(t, db, sb, models.KindProductCoupon, sandbox.SeedProductCoupon, sandbox.SeedStockWechatPayMode)
	if _, err := in.svc.Check(ctx, audit.Context{}, uploads.CheckInput{Stock: wst, FileName: "x", Body: strings.NewReader("A1\n"), MaxBytes: 10}); !errors.Is(err, uploads.ErrCannotUpload) {
		t.Fatalf("WECHATPAY-mode stock: %v", err)
	}
	// A checked upload can be abandoned, once; its batches go.
	u := check(t, in.svc, st, "codes.csv", []byte("A1\nA2\n"))
	if err := in.svc.Abandon(ctx, audit.Context{Actor: "olivia"}, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := in.svc.Abandon(ctx, audit.Context{Actor: "olivia"}, u.ID); !errors.Is(err, uploads.ErrWrongState) {
		t.Fatalf("second abandon: %v", err)
	}
	if err := in.svc.Start(ctx, audit.Context{Actor: "olivia"}, u.ID); !errors.Is(err, uploads.ErrWrongState) {
		t.Fatalf("start after abandon: %v", err)
	}
	db.Gorm.Model(&uploads.Batch{}).Where("upload_id = ?", u.ID).Count(&n)
	if n != 0 {
		t.Fatalf("%d batches left by an abandoned upload", n)
	}
}

// The shared limiter spaces requests of several instances on one database.
func TestRateLimiterShared(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		const n, interval = 40, 10 * time.Millisecond
		times := make(chan time.Time, 2*n)
		start := time.Now()
		done := make(chan error, 2)
		for range 2 {
			lim := &uploads.RateLimiter{DB: db} // one per "instance"
			go func() {
				for range n {
					if err := lim.Wait(ctx, "test", interval); err != nil {
						done <- err
						return
					}
					times <- time.Now()
				}
				done <- nil
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if el := time.Since(start); el < (2*n-1)*interval {
			t.Fatalf("%d requests at one per %s took only %s", 2*n, interval, el)
		}
		close(times)
	})
}

// Acceptance 5, in one process: two instances on one PostgreSQL share the
// job queue and the send rate. No batch is sent twice (the sandbox saw each
// request number once, so none was sent by both and none was throttled),
// both instances sent, and the combined rate stayed within the limit.
func TestTwoInstancesShareQueueAndRate(t *testing.T) {
	db := testdb.Postgres(t)
	const rate = 40
	sb := newSandbox(t, sandbox.Options{RateLimit: rate})
	st := productStock(t, db, sb)
	opts := uploads.Options{Slice: 10 * time.Second, LeaseTTL: 3 * time.Second, Heartbeat: 300 * time.Millisecond, SweepEvery: time.Second}
	// Two jobs at a time each: four uploads need both instances.
	a := startInstance(t, db, sb, envOptions{rate: wxpay.PerSecond(rate), options: opts, id: "console-a", maxWorkers: 2})
	b := startInstance(t, db, sb, envOptions{rate: wxpay.PerSecond(rate), options: opts, id: "console-b", maxWorkers: 2})
	ctx := context.Background()
	var ids []int64
	var all []string
	for i, in := range []*instance{a, b, a, b} {
		data, valid := codeFile(fmt.Sprintf("TWO%d", i), 6000, 0, 0, "")
		all = append(all, valid...)
		u := check(t, in.svc, st, "codes.csv", data)
		if err := in.svc.Start(ctx, audit.Context{Actor: "olivia"}, u.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	var batches int64
	for _, id := range ids {
		u := waitEnded(t, a.svc, id, 60*time.Second)
		if u.Status != uploads.StatusFinished || u.CodesFailed != 0 || u.CodesExist != 0 {
			t.Fatalf("upload %d: %+v", id, u)
		}
		batches += u.BatchesTotal
	}
	assertInventory(t, sb, sandbox.SeedStockSending, all)
	for _, r := range sb.Requests() {
		if r.Count != 1 {
			t.Fatalf("request %s arrived %d times", r.RequestNo, r.Count)
		}
	}
	var senders []string
	db.Gorm.Model(&uploads.Batch{}).Distinct("sent_by").Order("sent_by").Pluck("sent_by", &senders)
	if strings.Join(senders, ",") != "console-a,console-b" {
		t.Fatalf("batches sent by %v, want both instances", senders)
	}
	// Requests leave at most one per 1/rate; their arrival times carry the
	// network's (here: the scheduler's) jitter, which the sandbox's token
	// bucket absorbs: none was throttled (every request arrived once). A
	// second of arrivals may hold the departures of a little more than a
	// second: up to 100 ms of delay on a loaded two-core machine with the
	// race detector (43 in a second was seen once in CI).
	const jitter = 100 * time.Millisecond
	if peak, most := sb.maxInWindow(time.Second), int(rate*(time.Second+jitter)/time.Second)+1; peak > most {
		t.Fatalf("%d requests within one second, limit %d/s (at most %d allowing %s of jitter)", peak, rate, most, jitter)
	}
	sb.mu.Lock()
	span := sb.arrivals[len(sb.arrivals)-1].Sub(sb.arrivals[0])
	sb.mu.Unlock()
	t.Logf("%d batches sent over %s: %.1f/s (limit %d/s), peak %d in a second", batches, span.Round(time.Millisecond),
		float64(batches-1)/span.Seconds(), rate, sb.maxInWindow(time.Second))
}
