package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/metrics"
	"voucherconsole/internal/testdb"
)

// A page whose component fails midway answers with the whole 500 page, not
// the half written before the failure under the status meant for the page.
func TestRenderFailedMidway(t *testing.T) {
	s := New(Deps{
		DB: testdb.SQLite(t), Catalog: i18n.MustLoad(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New(),
		Sessions: sessions.NewCookieStore([]byte(strings.Repeat("k", 32))),
	})
	halfway := templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		if _, err := io.WriteString(w, "<!doctype html><p id=\"half-written\">"); err != nil {
			return err
		}
		return errors.New("template failed after writing")
	})
	whole := templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		_, err := io.WriteString(w, "<p id=\"whole\">done</p>")
		return err
	})
	for _, tc := range []struct {
		name   string
		comp   templ.Component
		status int
		has    string
		hasnt  string
	}{
		{"fails midway", halfway, http.StatusInternalServerError, "<h1>出错了</h1>", "half-written"},
		{"renders", whole, http.StatusCreated, `<p id="whole">done</p>`, "出错了"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest(http.MethodGet, "/stocks", nil)
			s.render(c, http.StatusCreated, tc.comp)
			body := w.Body.String()
			if w.Code != tc.status || !strings.Contains(body, tc.has) || strings.Contains(body, tc.hasnt) {
				t.Fatalf("status %d, want %d; body:\n%s", w.Code, tc.status, body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}
