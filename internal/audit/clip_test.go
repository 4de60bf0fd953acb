package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

// Whatever a caller passes, an entry's free-text fields are bounded, valid
// UTF-8 and free of NUL, and the chain still verifies: an anonymous sign-in
// with a multi-megabyte username cannot write a row that can never go.
func TestAppendClipsEveryFreeTextField(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		huge := strings.Repeat("券", 2<<20) // 6 MB
		bad := "a\x00b\xffc"
		rec := audit.Record{
			Actor: huge, ActorRoles: []string{huge}, Action: audit.ActionSignInFailed,
			TargetType: audit.TargetUser, TargetID: huge + bad, Outcome: audit.Failure,
			WxRequestNo: huge, WxErrorCode: huge, WxRequestID: huge,
			ClientIP: huge, UserAgent: huge, RequestID: huge,
			Detail: map[string]any{"reason": huge, bad: bad, "list": []string{huge}, "nested": map[string]any{"x": huge}},
		}
		if _, err := audit.Append(ctx, db.Gorm, time.Now(), rec); err != nil {
			t.Fatal(err)
		}
		var e audit.Entry
		if err := db.Gorm.Take(&e).Error; err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{
			"actor": e.Actor, "actor_roles": e.ActorRoles, "target_id": e.TargetID, "wx_request_no": e.WxRequestNo,
			"wx_error_code": e.WxErrorCode, "wx_request_id": e.WxRequestID, "client_ip": e.ClientIP,
			"user_agent": e.UserAgent, "request_id": e.RequestID, "detail": e.Detail,
		} {
			if len(v) > audit.MaxDetail || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				t.Errorf("%s stored %d bytes (valid UTF-8 %v)", name, len(v), utf8.ValidString(v))
			}
		}
		if len(e.Actor) > audit.MaxActor || len(e.TargetID) > audit.MaxTargetID {
			t.Errorf("actor %d bytes, target %d bytes", len(e.Actor), len(e.TargetID))
		}
		if res, err := audit.Verify(ctx, db.Gorm); err != nil || !res.Intact {
			t.Fatalf("verify after a clipped entry: %+v %v", res, err)
		}
	})
}
