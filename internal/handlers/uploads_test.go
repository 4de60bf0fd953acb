package handlers

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/uploads"
	"voucherconsole/web/templates"
)

func TestUploadFormatting(t *testing.T) {
	en := i18n.MustLoad().For(i18n.English)
	for _, tc := range []struct{ got, want string }{
		{num(0), "0"},
		{num(999), "999"},
		{num(1000), "1,000"},
		{num(1234567), "1,234,567"},
		{num(-20002), "-20,002"},
		{humanBytes(512), "512 B"},
		{humanBytes(2048), "2 KB"},
		{humanBytes(100 << 20), "100 MB"},
		{humanBytes(200000), "195.3 KB"},
		{durationText(en, -1), "—"},
		{durationText(en, 42), "42 s"},
		{durationText(en, 125), "2 min 5 s"},
		{durationText(en, 7260), "2 h 1 min"},
		{encodingLabel(en, "GB18030"), "GBK/GB18030"},
		{encodingLabel(en, "UTF-8 with BOM"), "UTF-8 with BOM"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestProgressView(t *testing.T) {
	en := i18n.MustLoad().For(i18n.English)
	for _, tc := range []struct {
		p    uploads.Progress
		want progressTexts
	}{
		{uploads.Progress{CodesTotal: 1000, CodesDone: 250, BatchesTotal: 5, BatchesDone: 1, Percent: 25, Rate: 199.6, ETASeconds: 3, Active: true},
			progressTexts{25, "25%", "250 of 1,000", "1 of 5", "200 codes/s", "3 s"}},
		{uploads.Progress{CodesTotal: 1000, CodesDone: 1000, BatchesTotal: 5, BatchesDone: 5, Percent: 99.99999, ETASeconds: -1, Ended: true},
			progressTexts{100, "100%", "1,000 of 1,000", "5 of 5", "—", "Done"}},
		{uploads.Progress{ETASeconds: -1, Active: true}, progressTexts{0, "0%", "0 of 0", "0 of 0", "—", "—"}},
	} {
		if got := progressView(en, tc.p); got != tc.want {
			t.Errorf("progressView(%+v) = %+v, want %+v", tc.p, got, tc.want)
		}
	}
}

func TestProblemReasons(t *testing.T) {
	zh := i18n.MustLoad().For(i18n.Chinese)
	for _, tc := range []struct {
		l            uploads.ReportLine
		reason, more string
	}{
		{uploads.ReportLine{Reason: "too_long"}, "超过 40 个字符", ""},
		{uploads.ReportLine{Reason: "bad_char", Detail: "3:#"}, "第 3 个字符“#”不允许", ""},
		{uploads.ReportLine{Reason: "duplicate", Detail: "7"}, "与第 7 行重复", ""},
		{uploads.ReportLine{Reason: "already_uploaded"}, "控制台已向该批次上传过", ""},
		{uploads.ReportLine{Reason: "wx_failed", WxCode: "PARAM_ERROR", WxMessage: "参数错误"}, "微信支付拒绝", "PARAM_ERROR 参数错误"},
		{uploads.ReportLine{Reason: "something_new"}, "something_new", ""},
	} {
		r, d := problemReason(zh, tc.l, 40)
		if r != tc.reason || d != tc.more {
			t.Errorf("%+v: %q %q, want %q %q", tc.l, r, d, tc.reason, tc.more)
		}
	}
}

func TestAttachmentNames(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for name, want := range map[string]string{
		"codes.csv": `attachment; filename=codes.csv`,
		"券码 1.csv":  `attachment; filename="__ 1.csv"; filename*=UTF-8''%E5%88%B8%E7%A0%81%201.csv`,
		`a"b\c.csv`: `attachment; filename="a_b_c.csv"; filename*=UTF-8''a%22b%5Cc.csv`,
	} {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		attachment(c, name)
		if got := c.Writer.Header().Get("Content-Disposition"); got != want {
			t.Errorf("%q: %s, want %s", name, got, want)
		}
	}
}

// Without JavaScript an active upload's page refreshes itself; an ended one
// does not, and only an active page loads the live script.
func TestUploadPageRefresh(t *testing.T) {
	p := templates.Page{T: i18n.MustLoad().For(i18n.English)}
	for _, tc := range []struct {
		props   templates.UploadProps
		refresh bool
		script  bool
	}{
		{templates.UploadProps{Page: p, ID: 1, Status: "sending", Active: true, ShowProgress: true}, true, true},
		{templates.UploadProps{Page: p, ID: 1, Status: "finished", ShowProgress: true, ShowReport: true}, false, true},
		{templates.UploadProps{Page: p, ID: 1, Status: "checked", CanStart: true}, false, false},
	} {
		var b bytes.Buffer
		if err := templates.UploadPage(tc.props).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		html := b.String()
		if got := strings.Contains(html, `<noscript><meta http-equiv="refresh"`); got != tc.refresh {
			t.Errorf("%s: refresh %v, want %v", tc.props.Status, got, tc.refresh)
		}
		if got := strings.Contains(html, `/static/upload.js`); got != tc.script {
			t.Errorf("%s: script %v, want %v", tc.props.Status, got, tc.script)
		}
	}
}
