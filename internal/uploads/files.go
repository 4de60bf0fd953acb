package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Files keeps the original files of uploads, each under a key (an upload's
// FilePath). Everything the pipeline and the pages do with a file goes
// through it, so a store shared by every instance can replace LocalFiles
// here alone.
type Files interface {
	// Put stores what r yields under key, all of it or nothing, and
	// returns its size.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open opens the file under key; ErrNoFile when there is none here.
	Open(ctx context.Context, key string) (File, error)
	// Remove removes the file under key; removing a missing file is no error.
	Remove(ctx context.Context, key string) error
}

// File is a stored file, read by the check and downloaded by the page.
type File interface {
	io.ReadSeekCloser
	Size() int64
}

// ErrNoFile means the store has no file under the key (on this instance).
var ErrNoFile = errors.New("upload file not found")

// LocalFiles keeps files in a directory of the local disk, readable by the
// console's user only.
type LocalFiles struct{ Dir string }

func (l LocalFiles) path(key string) string { return filepath.Join(l.Dir, filepath.FromSlash(key)) }

// Put writes to a temporary name and renames, so a file under key is whole.
func (l LocalFiles) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	dst := l.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(dst), "incoming-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

// Open opens the file under key.
func (l LocalFiles) Open(_ context.Context, key string) (File, error) {
	f, err := os.Open(l.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoFile
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return localFile{f, fi.Size()}, nil
}

// Remove removes the file under key.
func (l LocalFiles) Remove(_ context.Context, key string) error {
	err := os.Remove(l.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

type localFile struct {
	*os.File
	size int64
}

func (f localFile) Size() int64 { return f.size }

// ctxReader stops a copy when ctx ends (the request that sends the file
// went away).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
