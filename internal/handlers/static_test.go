package handlers_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"voucherconsole/internal/testdb"
	"voucherconsole/web"
)

// Static assets: linked by content hash and then cached for a year, with an
// ETag to revalidate otherwise; pages and assets are compressed for clients
// that accept it.
func TestStaticAssetsCachedAndCompressed(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	c := h.client()
	_, login := h.do(c, "GET", "/login", nil, nil)
	asset := web.Asset("app.css")
	if !strings.Contains(asset, "?v=") || !strings.Contains(login, `href="`+asset+`"`) {
		t.Fatalf("the page does not link the hashed stylesheet %q", asset)
	}
	resp, body := h.do(c, "GET", asset, nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		resp.Header.Get("ETag") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "--accent") {
		t.Fatalf("hashed asset: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = h.do(c, "GET", "/static/app.css", nil, http.Header{"If-None-Match": {resp.Header.Get("ETag")}})
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("Cache-Control") != "public, no-cache" {
		t.Fatalf("revalidation: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := h.do(c, "GET", "/static/nothing.css", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing asset: %d", resp.StatusCode)
	}
	for _, path := range []string{"/login", asset} {
		req, _ := http.NewRequest("GET", h.http.URL+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Transport{}).RoundTrip(req) // a transport that does not decompress by itself
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(resp.Body)
		if resp.Header.Get("Content-Encoding") != "gzip" || err != nil {
			t.Fatalf("%s: Content-Encoding %q (%v)", path, resp.Header.Get("Content-Encoding"), err)
		}
		plain, _ := io.ReadAll(zr)
		resp.Body.Close()
		if len(plain) < 1024 {
			t.Fatalf("%s: %d bytes after decompression", path, len(plain))
		}
	}
}
