package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"sync"
)

// assetHashes maps each file under static/ to a short hash of its content,
// computed once from the embedded files (they never change while the
// process runs).
var assetHashes = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(Static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := Static.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[path[len("static/"):]] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out
})

// AssetHash is the content hash of a static file ("" when there is none).
func AssetHash(name string) string { return assetHashes()[name] }

// Asset is the URL of a static file, carrying its content hash: a new
// version has a new URL, so each version may be cached for a year.
func Asset(name string) string {
	if h := AssetHash(name); h != "" {
		return "/static/" + name + "?v=" + h
	}
	return "/static/" + name
}
