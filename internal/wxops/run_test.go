package wxops_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
)

// Run classifies every outcome: success; a WeChat Pay refusal ends the
// operation and frees its form token; an unknown outcome (a reply that failed
// verification, no reply, a 5xx, a 429) keeps it pending, and the same form
// posted again resends the same request number and body. Audit entries
// carry the code and Request-ID, never the error's text.
func TestRunClassifies(t *testing.T) {
	secret := "secret-host.internal:443 key=abc"
	cases := []struct {
		name        string
		first       error
		wantStatus  models.OperationStatus
		wantCode    string
		sameOnRetry bool // the re-post resends the recorded request number
	}{
		{"success", nil, models.OpSucceeded, "", true},
		{"refused", &wxpay.APIError{StatusCode: 400, Code: "PARAM_ERROR", Message: "bad", RequestID: "RID-1"}, models.OpFailed, "PARAM_ERROR", false},
		{"reply rejected", &wxpay.ReplyError{RequestID: "RID-2", Err: errors.New(secret)}, models.OpPending, wxpay.CodeReplyRejected, true},
		{"no reply", &wxpay.TransportError{Err: errors.New(secret)}, models.OpPending, wxpay.CodeNetwork, true},
		{"5xx", &wxpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR", RequestID: "RID-3"}, models.OpPending, "SYSTEM_ERROR", true},
		{"429", &wxpay.APIError{StatusCode: http.StatusTooManyRequests, Code: "FREQUENCY_LIMITED"}, models.OpPending, "FREQUENCY_LIMITED", true},
		{"unsendable", wxops.Unsendable("NOT_SENT", "nothing was sent", errors.New(secret)), models.OpFailed, "NOT_SENT", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *database.DB) {
				ctx := context.Background()
				store := &wxops.Store{DB: db.Gorm}
				ac := audit.Context{Actor: "test"}
				var sent []string
				failedHook := 0
				reply := tc.first
				call := wxops.Call{
					Audit: wxops.Audit{Action: "test.act", TargetType: audit.TargetStock, TargetID: "7", Detail: map[string]any{"k": "v"}},
					Send: func(_ context.Context, op *models.WxOperation) (*wxops.Done, error) {
						body, err := wxops.Body[map[string]string](op)
						if err != nil {
							return nil, err
						}
						sent = append(sent, op.RequestNo+"/"+body["n"])
						if reply != nil {
							return nil, reply
						}
						return &wxops.Done{RequestID: "RID-OK", Result: map[string]string{"ok": "yes"}}, nil
					},
					Failed: func(*gorm.DB, *models.WxOperation) error { failedHook++; return nil },
				}
				again := func(context.Context, *models.WxOperation) (wxops.Call, error) { return call, nil }
				post := func(reqNo, n string) *models.WxOperation {
					op, err := store.Run(ctx, ac, wxops.Intent{Kind: "test_kind", RequestNo: reqNo, FormToken: "form-1",
						Body: map[string]string{"n": n}}, call, again)
					if op == nil {
						t.Fatalf("run: %v", err)
					}
					return op
				}
				op := post("REQ-A", "first")
				if op.Status != tc.wantStatus || op.WxErrorCode != tc.wantCode {
					t.Fatalf("status %s code %q, want %s %q", op.Status, op.WxErrorCode, tc.wantStatus, tc.wantCode)
				}
				if tc.first != nil && failedHook != 1 {
					t.Fatalf("Failed ran %d times", failedHook)
				}
				var entries []audit.Entry
				db.Gorm.Where("action = 'test.act'").Order("seq").Find(&entries)
				if len(entries) != 2 || entries[0].Outcome != audit.Pending || entries[0].WxRequestNo != "REQ-A" {
					t.Fatalf("audit %+v", entries)
				}
				if e := entries[1]; tc.first != nil && (e.Outcome != audit.Failure || e.WxErrorCode != tc.wantCode) {
					t.Fatalf("failure entry %+v", e)
				}
				for _, e := range entries {
					if strings.Contains(e.Detail, "secret") || strings.Contains(e.WxErrorCode, "secret") {
						t.Fatalf("an error's text reached the audit log: %+v", e)
					}
				}
				// The same form again, after the in-flight window.
				store.Now = func() time.Time { return time.Now().Add(2 * wxops.InFlight) }
				reply = nil
				later := post("REQ-B", "second")
				want := []string{"REQ-A/first"}
				switch {
				case tc.wantStatus == models.OpPending:
					want = append(want, "REQ-A/first") // resent unchanged
				case !tc.sameOnRetry:
					want = append(want, "REQ-B/second") // a new operation
				}
				if !slices.Equal(sent, want) {
					t.Fatalf("sent %v, want %v", sent, want)
				}
				if later.Status != models.OpSucceeded || (tc.sameOnRetry && later.ID != op.ID) {
					t.Fatalf("re-post: %+v", later)
				}
			})
		})
	}
}

// A form posted twice at once: the second finds the operation recorded
// moments ago and never tried, and sends nothing (ErrInFlight).
func TestRunInFlight(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		store := &wxops.Store{DB: db.Gorm}
		ac := audit.Context{Actor: "test"}
		in := wxops.Intent{Kind: "test_kind", RequestNo: "REQ-A", FormToken: "form-2", Body: map[string]string{}}
		a := wxops.Audit{Action: "test.act", TargetType: audit.TargetStock, TargetID: "7"}
		if _, existing, err := store.Record(ctx, ac, in, a); err != nil || existing {
			t.Fatalf("record: %v %v", existing, err)
		}
		sends := 0
		in.RequestNo = "REQ-B"
		call := wxops.Call{Audit: a, Send: func(context.Context, *models.WxOperation) (*wxops.Done, error) {
			sends++
			return &wxops.Done{}, nil
		}}
		_, err := store.Run(ctx, ac, in, call, func(context.Context, *models.WxOperation) (wxops.Call, error) { return call, nil })
		if !errors.Is(err, wxops.ErrInFlight) || sends != 0 {
			t.Fatalf("err %v, %d sends", err, sends)
		}
	})
}
