package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
)

// lastAudit returns the newest entry of action and its detail.
func (h *harness) lastAudit(action string) (audit.Entry, map[string]any) {
	h.t.Helper()
	var e audit.Entry
	if err := h.db.Gorm.Where("action = ?", action).Order("seq DESC").Take(&e).Error; err != nil {
		h.t.Fatalf("no %s entry: %v", action, err)
	}
	d := map[string]any{}
	_ = json.Unmarshal([]byte(e.Detail), &d)
	return e, d
}

func (h *harness) userID(name string) int64 {
	h.t.Helper()
	var u models.User
	if err := h.db.Gorm.Where("username = ?", name).Take(&u).Error; err != nil {
		h.t.Fatal(err)
	}
	return u.ID
}

func TestAdminAddUser(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("ada", models.RoleAdmin)
		c := h.client()
		h.signIn(c, "ada", testPassword)

		resp, body := h.do(c, "GET", "/admin/users/new", nil, nil)
		if resp.StatusCode != 200 || parseHTML(t, body).Find(`input[name="roles"]`).Length() != 4 {
			t.Fatalf("add form: %d", resp.StatusCode)
		}
		// Invalid: 422 with each error next to its field, values kept.
		resp, body = h.do(c, "POST", "/admin/users", url.Values{"username": {"No Spaces!"}}, nil)
		doc := parseHTML(t, body)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#username-error").Text(), "2–32 个字符") ||
			!strings.Contains(doc.Find("#roles-error").Text(), "至少选择一个角色") || doc.Find("#username").AttrOr("value", "") != "No Spaces!" {
			t.Fatalf("invalid add: %d %q %q", resp.StatusCode, doc.Find("#username-error").Text(), doc.Find("#roles-error").Text())
		}
		resp, body = h.do(c, "POST", "/admin/users", url.Values{"username": {"ada"}, "roles": {"support", "manager"}}, http.Header{"Accept-Language": {"en"}})
		doc = parseHTML(t, body)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#username-error").Text(), "taken") ||
			doc.Find("#role-support").AttrOr("checked", "no") == "no" || doc.Find("#role-admin").AttrOr("checked", "no") != "no" {
			t.Fatalf("taken username: %d %q", resp.StatusCode, doc.Find("#username-error").Text())
		}

		resp, _ = h.do(c, "POST", "/admin/users", url.Values{"username": {"Olivia"}, "roles": {"operator", "support"}}, nil)
		id := h.userID("olivia")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != fmt.Sprintf("/admin/users/%d", id) {
			t.Fatalf("add: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, body = h.do(c, "GET", resp.Header.Get("Location"), nil, nil)
		doc = parseHTML(t, body)
		pw := doc.Find("#one-time-password").Text()
		if len(pw) != 16 || !strings.Contains(doc.Find(".flash").Text(), "已添加用户 olivia") {
			t.Fatalf("one-time password %q, flash %q", pw, doc.Find(".flash").Text())
		}
		// Shown once.
		if _, body = h.do(c, "GET", resp.Header.Get("Location"), nil, nil); strings.Contains(body, pw) || strings.Contains(body, `id="one-time-password"`) {
			t.Fatal("the one-time password was shown a second time")
		}
		e, d := h.lastAudit(audit.ActionUserAdd)
		if e.Actor != "ada" || e.TargetID != fmt.Sprint(id) || fmt.Sprint(d["roles_after"]) != "[operator support]" || strings.Contains(e.Detail, pw) {
			t.Fatalf("add audited as %+v", e)
		}
		_, body = h.do(c, "GET", "/admin/users", nil, nil)
		if row := parseHTML(t, body).Find(fmt.Sprintf("#user-%d", id)).Text(); !strings.Contains(row, "olivia") || !strings.Contains(row, "须修改密码") {
			t.Fatalf("user list row %q", row)
		}

		// The new user signs in with it and must change it first.
		oc := h.client()
		if resp := h.signIn(oc, "olivia", pw); resp.Header.Get("Location") != "/account/password" {
			t.Fatalf("sign-in with the one-time password went to %q", resp.Header.Get("Location"))
		}
		if resp, _ := h.do(oc, "GET", "/stocks", nil, nil); resp.Header.Get("Location") != "/account/password" {
			t.Fatalf("before changing the password: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestAdminChangeUser(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("ada", models.RoleAdmin)
		h.addUser("olivia", models.RoleOperator)
		id := h.userID("olivia")
		base := fmt.Sprintf("/admin/users/%d", id)
		ac := h.client()
		h.signIn(ac, "ada", testPassword)
		oc := h.client()
		h.signIn(oc, "olivia", testPassword)
		signedIn := func(c *http.Client) bool {
			resp, _ := h.do(c, "GET", "/", nil, nil)
			return resp.StatusCode == 200
		}
		if !signedIn(oc) {
			t.Fatal("olivia is not signed in")
		}

		// Roles.
		resp, _ := h.do(ac, "POST", base+"/roles", url.Values{"roles": {"manager", "support"}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != base {
			t.Fatalf("roles: %d", resp.StatusCode)
		}
		e, d := h.lastAudit(audit.ActionUserRoles)
		if e.Actor != "ada" || fmt.Sprint(d["roles_before"]) != "[operator]" || fmt.Sprint(d["roles_after"]) != "[manager support]" {
			t.Fatalf("roles audited as %v", d)
		}
		resp, body := h.do(ac, "POST", base+"/roles", url.Values{}, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(parseHTML(t, body).Find("#edit-roles-error").Text(), "至少选择一个角色") {
			t.Fatalf("no roles: %d", resp.StatusCode)
		}
		h.signIn(oc, "olivia", testPassword) // the role change ended her session

		// Disable: confirmation required; then her open session ends.
		resp, body = h.do(ac, "POST", base+"/disable", url.Values{}, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || parseHTML(t, body).Find("#confirm_disable-error").Text() == "" {
			t.Fatalf("unconfirmed disable: %d", resp.StatusCode)
		}
		if !signedIn(oc) {
			t.Fatal("an unconfirmed disable ended the session")
		}
		resp, _ = h.do(ac, "POST", base+"/disable", url.Values{"confirm_disable": {"yes"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("disable: %d", resp.StatusCode)
		}
		if signedIn(oc) {
			t.Fatal("a disabled user's session still works")
		}
		if resp := h.signIn(h.client(), "olivia", testPassword); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a disabled user signed in: %d", resp.StatusCode)
		}
		e, d = h.lastAudit(audit.ActionUserDisable)
		if e.Outcome != audit.Success || d["disabled_after"] != true || fmt.Sprint(d["roles_before"]) != "[manager support]" || fmt.Sprint(d["roles_after"]) != "[manager support]" {
			t.Fatalf("disable audited as %+v %v", e, d)
		}
		_, body = h.do(ac, "GET", base, nil, nil)
		if doc := parseHTML(t, body); !strings.Contains(doc.Find("#user-state").Text(), "已停用") || doc.Find("#enable-form").Length() != 1 {
			t.Fatal("user page does not show the user disabled")
		}

		// Enable.
		if resp, _ := h.do(ac, "POST", base+"/enable", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("enable: %d", resp.StatusCode)
		}
		h.lastAudit(audit.ActionUserEnable)
		h.signIn(oc, "olivia", testPassword)
		if !signedIn(oc) {
			t.Fatal("enabled user cannot sign in")
		}

		// Reset password: a new one-time password, shown once; sessions end.
		if resp, _ := h.do(ac, "POST", base+"/reset-password", url.Values{}, nil); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("unconfirmed reset: %d", resp.StatusCode)
		}
		resp, _ = h.do(ac, "POST", base+"/reset-password", url.Values{"confirm_reset": {"yes"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("reset: %d", resp.StatusCode)
		}
		_, body = h.do(ac, "GET", base, nil, nil)
		pw := parseHTML(t, body).Find("#one-time-password").Text()
		if len(pw) != 16 {
			t.Fatalf("reset one-time password %q", pw)
		}
		if signedIn(oc) {
			t.Fatal("a session survived the password reset")
		}
		if resp := h.signIn(h.client(), "olivia", testPassword); resp.StatusCode != http.StatusUnauthorized {
			t.Fatal("the old password still works")
		}
		if resp := h.signIn(oc, "olivia", pw); resp.Header.Get("Location") != "/account/password" {
			t.Fatalf("sign-in after reset went to %q", resp.Header.Get("Location"))
		}
		e, d = h.lastAudit(audit.ActionUserResetPassword)
		if e.Actor != "ada" || d["must_change"] != true || strings.Contains(e.Detail, pw) {
			t.Fatalf("reset audited as %+v", e)
		}

		// Unknown users are 404.
		for _, path := range []string{"/admin/users/99999", "/admin/users/abc"} {
			if resp, _ := h.do(ac, "GET", path, nil, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d", path, resp.StatusCode)
			}
		}
	})
}

// Acceptance 5: removing or disabling the last admin is refused (and the
// refusal audited).
func TestAdminLastAdmin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("ada", models.RoleAdmin)
		h.addUser("bob", models.RoleAdmin, models.RoleManager)
		ada, bob := h.userID("ada"), h.userID("bob")
		ac, bc := h.client(), h.client()
		h.signIn(ac, "ada", testPassword)
		h.signIn(bc, "bob", testPassword)

		// Nobody disables themselves.
		resp, body := h.do(ac, "POST", fmt.Sprintf("/admin/users/%d/disable", ada), url.Values{"confirm_disable": {"yes"}}, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "不能停用自己的账号") {
			t.Fatalf("self-disable: %d", resp.StatusCode)
		}
		// Ada disables Bob: Ada is then the last admin.
		if resp, _ := h.do(ac, "POST", fmt.Sprintf("/admin/users/%d/disable", bob), url.Values{"confirm_disable": {"yes"}}, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("disable bob: %d", resp.StatusCode)
		}
		if resp, _ := h.do(bc, "GET", "/admin/users", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("bob's session after he was disabled: %d", resp.StatusCode)
		}
		resp, body = h.do(ac, "POST", fmt.Sprintf("/admin/users/%d/roles", ada), url.Values{"roles": {"manager"}}, http.Header{"Accept-Language": {"en"}})
		doc := parseHTML(t, body)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#edit-roles-error").Text(), "last enabled admin") ||
			doc.Find("#edit-role-manager").AttrOr("checked", "no") == "no" {
			t.Fatalf("removing the last admin's role: %d %q", resp.StatusCode, doc.Find("#edit-roles-error").Text())
		}
		e, d := h.lastAudit(audit.ActionUserRoles)
		if e.Outcome != audit.Failure || d["reason"] != "last_admin" || fmt.Sprint(d["roles_requested"]) != "[manager]" {
			t.Fatalf("refusal audited as %+v %v", e, d)
		}
		if resp, _ := h.do(ac, "GET", "/admin/users", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("ada lost access: %d", resp.StatusCode)
		}

		// With Bob enabled again, Ada may give up the admin role; she stays
		// signed in and goes home.
		h.do(ac, "POST", fmt.Sprintf("/admin/users/%d/enable", bob), url.Values{}, nil)
		resp, _ = h.do(ac, "POST", fmt.Sprintf("/admin/users/%d/roles", ada), url.Values{"roles": {"manager"}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("ada drops admin: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := h.do(ac, "GET", "/audit", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("ada as manager on /audit: %d", resp.StatusCode)
		}
		if resp, _ := h.do(ac, "GET", "/admin/users", nil, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("ada, no longer admin, on /admin/users: %d", resp.StatusCode)
		}
		// Bob is now the last admin and cannot be disabled by anyone.
		h.signIn(bc, "bob", testPassword)
		resp, body = h.do(bc, "POST", fmt.Sprintf("/admin/users/%d/roles", bob), url.Values{"roles": {"manager"}}, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "最后一个启用的管理员") {
			t.Fatalf("bob drops the last admin role: %d", resp.StatusCode)
		}
	})
}
