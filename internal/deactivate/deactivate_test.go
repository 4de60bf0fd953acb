package deactivate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

func TestValidate(t *testing.T) {
	st := &models.Stock{Kind: models.KindProductCoupon, StockID: sandbox.SeedStockSending}
	for _, tc := range []struct {
		name            string
		reason, confirm string
		want            map[string]string
	}{
		{"ok", "批次信息有误,重新创建", sandbox.SeedStockSending, map[string]string{}},
		{"150 Chinese characters", strings.Repeat("停", 150), sandbox.SeedStockSending, map[string]string{}},
		{"151 Chinese characters", strings.Repeat("停", 151), sandbox.SeedStockSending, map[string]string{"deactivate_reason": deactivate.ProblemTooLong}},
		{"150 characters plus surrounding spaces", "  " + strings.Repeat("a", 150) + "\n", sandbox.SeedStockSending, map[string]string{}},
		{"empty reason", "", sandbox.SeedStockSending, map[string]string{"deactivate_reason": deactivate.ProblemRequired}},
		{"blank reason", " \t ", sandbox.SeedStockSending, map[string]string{"deactivate_reason": deactivate.ProblemRequired}},
		{"no confirmation", "x", "", map[string]string{"stock_id": deactivate.ProblemRequired}},
		{"wrong confirmation", "x", sandbox.SeedStockPaused, map[string]string{"stock_id": deactivate.ProblemMismatch}},
		{"confirmation with spaces", "x", " " + sandbox.SeedStockSending + " ", map[string]string{}},
		{"both wrong", "", "nope", map[string]string{"deactivate_reason": deactivate.ProblemRequired, "stock_id": deactivate.ProblemMismatch}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := deactivate.Validate(st, tc.reason, tc.confirm)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// Only SENDING and PAUSED product-coupon stocks are deactivated; the others
// are refused before anything is sent. A deactivation is one request number,
// recorded as a pending intent and a successful outcome, and leaves the
// console's record as WeChat Pay's reply says.
func TestDeactivateByState(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		for _, tc := range []struct {
			stockID string
			allowed bool
		}{
			{sandbox.SeedStockSending, true},
			{sandbox.SeedStockPaused, true},
			{sandbox.SeedStockAuditing, false},
			{sandbox.SeedStockStopped, false},
			{sandbox.SeedStockDeactivated, false},
		} {
			st := e.stock(tc.stockID)
			if _, err := e.svc.ReadBack(ctx, st); err != nil {
				t.Fatal(err)
			}
			before := len(e.requests())
			got, err := e.svc.Deactivate(ctx, e.actor(), st, "  门店调整，停止发放  ", "form-"+tc.stockID)
			if !tc.allowed {
				var na *deactivate.NotAllowedError
				if !errors.As(err, &na) || na.State != st.State {
					t.Fatalf("%s (%s): err %v, want NotAllowedError", tc.stockID, st.State, err)
				}
				if len(e.requests()) != before {
					t.Fatalf("%s: a request was sent", tc.stockID)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.stockID, err)
			}
			if got.State != models.StateDeactivated || got.DeactivateReason != "门店调整，停止发放" || got.DeactivateTime == "" {
				t.Fatalf("%s: record after deactivation: %+v", tc.stockID, got)
			}
			if e.wxState(tc.stockID) != "DEACTIVATED" {
				t.Fatalf("%s: sandbox state %s", tc.stockID, e.wxState(tc.stockID))
			}
			stored := e.stock(tc.stockID)
			if stored.State != models.StateDeactivated || stored.DeactivateRequestNo != got.DeactivateRequestNo {
				t.Fatalf("%s: stored record %+v", tc.stockID, stored)
			}
		}
		ops := e.ops()
		if len(ops) != 2 {
			t.Fatalf("%d operations, want 2", len(ops))
		}
		reqs := e.requests()
		if len(reqs) != 2 {
			t.Fatalf("sandbox saw %d deactivation requests, want 2", len(reqs))
		}
		entries := e.entries(deactivate.Action)
		if len(entries) != 4 {
			t.Fatalf("%d audit entries, want 4 (intent and outcome of each)", len(entries))
		}
		for i, op := range ops {
			if op.Status != models.OpSucceeded || reqs[i].RequestNo != op.RequestNo || reqs[i].Count != 1 {
				t.Fatalf("operation %+v, sandbox %+v", op, reqs[i])
			}
			intent, outcome := entries[2*i], entries[2*i+1]
			if intent.Outcome != audit.Pending || outcome.Outcome != audit.Success ||
				intent.WxRequestNo != op.RequestNo || outcome.WxRequestNo != op.RequestNo || outcome.WxRequestID == "" {
				t.Fatalf("audit entries %+v / %+v for %s", intent, outcome, op.RequestNo)
			}
			if e.stock(map[int]string{0: sandbox.SeedStockSending, 1: sandbox.SeedStockPaused}[i]).DeactivateRequestNo != op.RequestNo {
				t.Fatalf("stock's deactivate_request_no is not the operation's %s", op.RequestNo)
			}
		}
	})
}

// The same form posted twice makes one request: the second post finds the
// first's operation and returns its outcome.
func TestDoubleSubmit(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := context.Background()
	st := e.stock(sandbox.SeedStockSending)
	if _, err := e.svc.Deactivate(ctx, e.actor(), st, "重复提交", "same-form"); err != nil {
		t.Fatal(err)
	}
	got, found, err := e.svc.Repost(ctx, e.actor(), "same-form")
	if err != nil || !found || got.State != models.StateDeactivated {
		t.Fatalf("repost: %v %v %+v", err, found, got)
	}
	if _, found, _ := e.svc.Repost(ctx, e.actor(), "another-form"); found {
		t.Fatal("an unknown form token was found")
	}
	if reqs := e.requests(); len(reqs) != 1 || reqs[0].Count != 1 {
		t.Fatalf("sandbox requests %+v", reqs)
	}
	if n := len(e.entries(deactivate.Action)); n != 2 {
		t.Fatalf("%d audit entries, want 2", n)
	}
}

type crash struct{}

// A crash right after the intent leaves a pending operation; Resume, as a
// restart runs it, sends it with the recorded request number and completes
// the deactivation.
func TestResumeAfterCrash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		e.svc.AfterIntent = func() { panic(crash{}) }
		func() {
			defer func() {
				if r := recover(); r != (crash{}) {
					t.Fatalf("recovered %v", r)
				}
			}()
			_, _ = e.svc.Deactivate(ctx, e.actor(), e.stock(sandbox.SeedStockPaused), "暂停后失效", "crash-form")
		}()
		e.svc.AfterIntent = nil
		ops := e.ops()
		if len(ops) != 1 || ops[0].Status != models.OpPending || len(e.requests()) != 0 {
			t.Fatalf("after the crash: ops %+v, requests %+v", ops, e.requests())
		}
		n, err := e.svc.Resume(ctx, 0)
		if err != nil || n != 1 {
			t.Fatalf("resume: %d, %v", n, err)
		}
		reqs := e.requests()
		if len(reqs) != 1 || reqs[0].RequestNo != ops[0].RequestNo || reqs[0].Count != 1 || !reqs[0].Identical {
			t.Fatalf("sandbox requests %+v, want one of %s", reqs, ops[0].RequestNo)
		}
		if e.wxState(sandbox.SeedStockPaused) != "DEACTIVATED" || e.stock(sandbox.SeedStockPaused).State != models.StateDeactivated {
			t.Fatal("not deactivated after resume")
		}
		entries := e.entries(deactivate.Action)
		if len(entries) != 2 || entries[0].Outcome != audit.Pending || entries[1].Outcome != audit.Success ||
			entries[0].WxRequestNo != ops[0].RequestNo || entries[1].WxRequestNo != ops[0].RequestNo {
			t.Fatalf("audit entries %+v", entries)
		}
		if n, err := e.svc.Resume(ctx, 0); n != 0 || err != nil {
			t.Fatalf("second resume: %d, %v", n, err)
		}
	})
}

// A reply that fails verification may hide a deactivation that happened:
// the operation stays pending and the resend, with the same request number
// and body, gets WeChat Pay's answer to the first.
func TestResumeAfterLostReply(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := context.Background()
	if err := e.sb.SetFaults(sandbox.Faults{BadSignatureRate: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Deactivate(ctx, e.actor(), e.stock(sandbox.SeedStockSending), "应答丢失", "lost-form")
	var re *wxpay.ReplyError
	if !errors.As(err, &re) {
		t.Fatalf("err %v, want a ReplyError", err)
	}
	if e.wxState(sandbox.SeedStockSending) != "DEACTIVATED" || e.ops()[0].Status != models.OpPending {
		t.Fatal("the sandbox should have deactivated the stock and the operation stayed pending")
	}
	_ = e.sb.SetFaults(sandbox.Faults{})
	// The operator posts the same form again.
	e.clock.Advance(time.Second)
	st, found, err := e.svc.Repost(ctx, e.actor(), "lost-form")
	if err != nil || !found || st.State != models.StateDeactivated {
		t.Fatalf("repost: %v %v %+v", err, found, st)
	}
	reqs := e.requests()
	if len(reqs) != 1 || reqs[0].Count != 2 || !reqs[0].Identical {
		t.Fatalf("sandbox requests %+v: want one number sent twice with identical bodies", reqs)
	}
}

// WeChat Pay's refusals: a 429 leaves the operation pending (the same form
// resends it); a state WeChat Pay does not allow ends it and the console
// reads the stock back.
func TestWeChatErrors(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := context.Background()
	_ = e.sb.SetFaults(sandbox.Faults{ThrottleRate: 1})
	_, err := e.svc.Deactivate(ctx, e.actor(), e.stock(sandbox.SeedStockSending), "限流", "busy-form")
	var ae *wxpay.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Code != "RATELIMIT_EXCEEDED" || ae.RequestID == "" {
		t.Fatalf("err %v, want 429", err)
	}
	if op := e.ops()[0]; op.Status != models.OpPending || op.WxErrorCode != "RATELIMIT_EXCEEDED" {
		t.Fatalf("operation after 429: %+v", op)
	}
	_ = e.sb.SetFaults(sandbox.Faults{})
	// Another form for the same stock finishes the pending request rather
	// than sending a second one.
	e.clock.Advance(2 * time.Minute)
	st, err := e.svc.Deactivate(ctx, e.actor(), e.stock(sandbox.SeedStockSending), "另一个表单", "other-form")
	if err != nil || st.State != models.StateDeactivated || st.DeactivateReason != "限流" {
		t.Fatalf("resend after 429: %v %+v", err, st)
	}
	if ops := e.ops(); len(ops) != 1 || ops[0].Status != models.OpSucceeded {
		t.Fatalf("operations %+v", ops)
	}
	if reqs := e.requests(); len(reqs) != 1 {
		t.Fatalf("requests %+v", reqs)
	}

	// The console still thinks the paused stock is PAUSED, but its end
	// time has passed on WeChat Pay's clock: STOPPED there.
	e.clock.Advance(100 * 24 * time.Hour)
	st = e.stock(sandbox.SeedStockPaused)
	_, err = e.svc.Deactivate(ctx, e.actor(), st, "已过期", "late-form")
	if !errors.As(err, &ae) || ae.Code != "INVALID_REQUEST" || !strings.Contains(ae.Message, "STOPPED") {
		t.Fatalf("err %v, want INVALID_REQUEST naming STOPPED", err)
	}
	if got := e.stock(sandbox.SeedStockPaused); got.State != models.StateStopped {
		t.Fatalf("record not read back after the refusal: %s", got.State)
	}
	last := e.ops()[1]
	if last.Status != models.OpFailed || last.FormToken != nil {
		t.Fatalf("refused operation %+v", last)
	}
	outcomes := e.entries(deactivate.Action)
	if got := outcomes[len(outcomes)-1]; got.Outcome != audit.Failure || got.WxErrorCode != "INVALID_REQUEST" || got.WxRequestID == "" {
		t.Fatalf("failure entry %+v", got)
	}
}

// Refuse writes a denied entry and sends nothing.
func TestRefuse(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	st := e.stock(sandbox.SeedStockAuditing)
	err := deactivate.Check(st)
	if err == nil {
		t.Fatal("an AUDITING stock passed the check")
	}
	if err := e.svc.Refuse(context.Background(), e.actor(), st, err); err != nil {
		t.Fatal(err)
	}
	got := e.entries(deactivate.Action)
	if len(got) != 1 || got[0].Outcome != audit.Denied || !strings.Contains(got[0].Detail, "state_not_allowed") {
		t.Fatalf("entries %+v", got)
	}
	if len(e.requests()) != 0 {
		t.Fatal("a request was sent")
	}
	if err := deactivate.Check(&models.Stock{Kind: models.KindFavor, State: models.StateSending}); err == nil {
		t.Fatal("a favor stock passed the check")
	}
}

func TestForStock(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	ctx := context.Background()
	st := e.stock(sandbox.SeedStockSending)
	if _, err := e.svc.Deactivate(ctx, e.actor(), st, "列出", "list-form"); err != nil {
		t.Fatal(err)
	}
	ops, err := e.svc.ForStock(ctx, st.ID)
	if err != nil || len(ops) != 1 || ops[0].Reason != "列出" || ops[0].Status != models.OpSucceeded || ops[0].RequestNo == "" {
		t.Fatalf("ForStock: %+v, %v", ops, err)
	}
}
