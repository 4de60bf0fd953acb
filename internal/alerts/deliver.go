package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"voucherconsole/internal/clock"
	"voucherconsole/internal/i18n"
)

// Messages renders alerts in one language.
type Messages struct {
	T i18n.Localizer
}

// Title and Text of an alert.
func (m Messages) Title(r *Row) string { return m.T.T("alerts." + r.Kind + ".title") }

// Text is the alert's sentence, its Args filled in.
func (m Messages) Text(r *Row) string {
	args := r.ArgList()
	as := make([]any, len(args))
	for i, a := range args {
		as[i] = a
	}
	return m.T.T("alerts."+r.Kind+".text", as...)
}

// NewHTTPClient is the client of outside deliveries: a bounded time per
// attempt, and no redirects followed (a delivery goes to the configured URL
// and nowhere else).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Worker delivers alerts to outside channels.
type Worker struct {
	river.WorkerDefaults[DeliverArgs]
	DB       *gorm.DB
	Client   *http.Client
	URLs     map[string]string // channel → URL
	Messages Messages
	Now      clock.Func
}

// Work makes one delivery attempt and records it; an error makes River try
// again later (NextRetry), up to maxAttempts.
func (w *Worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	var d Delivery
	if err := w.DB.WithContext(ctx).Take(&d, job.Args.DeliveryID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return river.JobCancel(err)
		}
		return err
	}
	if d.Status != DeliveryPending {
		return nil // delivered by an earlier attempt whose job outcome was lost
	}
	var a Row
	if err := w.DB.WithContext(ctx).Take(&a, d.AlertID).Error; err != nil {
		return err
	}
	target := w.URLs[d.Channel]
	if target == "" {
		return w.finish(ctx, &d, DeliveryFailed, 0, "channel not configured")
	}
	var body []byte
	switch d.Channel {
	case ChannelWeCom:
		body = w.weComBody(&a)
	default:
		body = w.jsonBody(&a)
	}
	status, problem := post(ctx, w.Client, target, body, d.Channel == ChannelWeCom)
	if problem == "" {
		return w.finish(ctx, &d, DeliveryDelivered, status, "")
	}
	final := DeliveryPending
	if job.Attempt >= job.MaxAttempts {
		final = DeliveryFailed
	}
	if err := w.finish(ctx, &d, final, status, problem); err != nil {
		return err
	}
	return fmt.Errorf("deliver alert %d to %s: %s", a.ID, d.Channel, problem)
}

// NextRetry backs off exponentially from one second, capped at 30 minutes:
// a receiver down for a moment gets the alert at once when it is back, one
// down for hours is not hammered.
func (w *Worker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	d := time.Second << min(job.Attempt-1, 11)
	return time.Now().Add(min(d, 30*time.Minute))
}

func (w *Worker) finish(ctx context.Context, d *Delivery, status string, httpStatus int, problem string) error {
	now := w.Now.UTC()
	up := map[string]any{"status": status, "attempts": gorm.Expr("attempts + 1"), "last_status": httpStatus,
		"last_error": problem, "updated_at": now}
	if status == DeliveryDelivered {
		up["delivered_at"] = now
	}
	return w.DB.WithContext(ctx).Model(&Delivery{}).Where("id = ?", d.ID).Updates(up).Error
}

// weComMax is the WeCom group robot's limit on a markdown message (bytes).
const weComMax = 4096

// weComBody is a WeCom group robot markdown message.
func (w *Worker) weComBody(a *Row) []byte {
	content := fmt.Sprintf("**%s**\n> %s", w.Messages.Title(a), w.Messages.Text(a))
	if a.Link != "" {
		content += "\n> " + a.Link
	}
	content += "\n> <font color=\"comment\">" + a.RaisedAt.UTC().Format(time.RFC3339) + "</font>"
	if len(content) > weComMax {
		content = cutUTF8(content, weComMax)
	}
	b, _ := json.Marshal(map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": content}})
	return b
}

// jsonBody is the generic JSON alert.
func (w *Worker) jsonBody(a *Row) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "alert", "id": a.ID, "kind": a.Kind, "key": a.CondKey,
		"title": w.Messages.Title(a), "text": w.Messages.Text(a), "link": a.Link,
		"args": a.ArgList(), "raised_at": a.RaisedAt.UTC().Format(time.RFC3339), "language": w.Messages.T.Lang(),
	})
	return b
}

// post sends body and says what went wrong, if anything, in words that hold
// no part of the URL (a WeCom robot URL carries its key).
func post(ctx context.Context, c *http.Client, target string, body []byte, weCom bool) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid URL"
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "timeout"
		}
		return 0, cutUTF8("transport: "+err.Error(), 200)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	if weCom {
		// The robot answers 200 with an errcode; only 0 is delivered.
		var r struct {
			ErrCode int    `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		if json.Unmarshal(reply, &r) != nil {
			return resp.StatusCode, "reply is not JSON"
		}
		if r.ErrCode != 0 {
			return resp.StatusCode, cutUTF8(fmt.Sprintf("errcode %d: %s", r.ErrCode, r.ErrMsg), 200)
		}
	}
	return resp.StatusCode, ""
}

func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
