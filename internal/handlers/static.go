package handlers

import (
	"bytes"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/gin-gonic/gin"

	"voucherconsole/web"
)

// staticAsset serves web/static with validators and cache lifetimes: a URL
// carrying the file's content hash (web.Asset) is cached for a year as
// immutable; any other asks the browser to revalidate, answered 304 by ETag.
func (s *Server) staticAsset(c *gin.Context) {
	name := path.Clean(c.Param("file"))[1:] // "/app.css" → "app.css"
	hash := web.AssetHash(name)
	data, err := fs.ReadFile(web.Static, "static/"+name)
	if hash == "" || err != nil {
		s.notFound(c)
		return
	}
	h := c.Writer.Header()
	h.Set("ETag", `"`+hash+`"`)
	if c.Query("v") == hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, no-cache")
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		h.Set("Content-Type", ct)
	}
	http.ServeContent(c.Writer, c.Request, name, time.Time{}, bytes.NewReader(data))
}
