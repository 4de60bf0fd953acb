// Package filestore keeps files (an upload's original file) where every
// console instance sharing the database can read them back: in the database
// itself, in chunks, on PostgreSQL and SQLite alike. A file is streamed in
// and out one chunk at a time, never held whole in memory.
package filestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/clock"
)

// ErrNotFound means no file has that key (here: another store, or deleted).
var ErrNotFound = errors.New("file not found")

// Store keeps files by key.
type Store interface {
	// Put streams r into a new file and returns its key and size. A failed
	// Put leaves nothing behind.
	Put(ctx context.Context, r io.Reader) (key string, size int64, err error)
	// Open reads a file back; ErrNotFound if there is none under key.
	Open(ctx context.Context, key string) (File, error)
	// Delete removes a file; deleting a missing one is not an error.
	Delete(ctx context.Context, key string) error
}

// File is a stored file being read.
type File interface {
	io.ReadSeekCloser
	Size() int64
}

// DefaultChunkSize is the size of the chunks a file is kept in: large
// enough that a 1,000,000-code file takes a few dozen rows, small enough
// that reading one holds the embedded database's single connection briefly.
const DefaultChunkSize = 512 << 10

// keyPrefix marks the keys of files kept in the database; other keys are
// paths relative to the data directory, where files were kept before.
const keyPrefix = "db:"

// DB keeps files in the stored_files and stored_file_chunks tables.
type DB struct {
	DB *gorm.DB
	// ChunkSize of new files; zero means DefaultChunkSize.
	ChunkSize int
	// Legacy reads (and deletes) the files whose keys are not database keys:
	// those kept on the receiving instance's disk before; may be nil.
	Legacy Store
	Now    clock.Func
}

type storedFile struct {
	ID        int64 `gorm:"primaryKey"`
	ChunkSize int
	Size      int64
	Chunks    int
	Complete  bool
	CreatedAt time.Time
}

func (storedFile) TableName() string { return "stored_files" }

type chunk struct {
	FileID int64 `gorm:"primaryKey"`
	Seq    int   `gorm:"primaryKey"`
	Data   []byte
}

func (chunk) TableName() string { return "stored_file_chunks" }

func (s *DB) chunkSize() int {
	if s.ChunkSize > 0 {
		return s.ChunkSize
	}
	return DefaultChunkSize
}

// Put writes the file chunk by chunk, each in its own short statement, and
// marks it complete at the end.
func (s *DB) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	f := &storedFile{ChunkSize: s.chunkSize(), CreatedAt: s.Now.UTC().Truncate(time.Microsecond)}
	if err := s.DB.WithContext(ctx).Create(f).Error; err != nil {
		return "", 0, fmt.Errorf("store file: %w", err)
	}
	size, n, err := s.write(ctx, f, r)
	if err == nil {
		err = s.DB.WithContext(ctx).Model(f).Updates(map[string]any{"size": size, "chunks": n, "complete": true}).Error
	}
	if err != nil {
		s.remove(context.WithoutCancel(ctx), f.ID)
		return "", 0, err
	}
	return keyPrefix + strconv.FormatInt(f.ID, 10), size, nil
}

func (s *DB) write(ctx context.Context, f *storedFile, r io.Reader) (int64, int, error) {
	buf := make([]byte, f.ChunkSize)
	var size int64
	for seq := 0; ; seq++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := s.DB.WithContext(ctx).Create(&chunk{FileID: f.ID, Seq: seq, Data: buf[:n]}).Error; err != nil {
				return 0, 0, fmt.Errorf("store file chunk: %w", err)
			}
			size += int64(n)
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			if n == 0 {
				return size, seq, nil
			}
			return size, seq + 1, nil
		case rerr != nil:
			return 0, 0, rerr
		}
	}
}

func (s *DB) remove(ctx context.Context, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("file_id = ?", id).Delete(&chunk{}).Error; err != nil {
			return err
		}
		return tx.Delete(&storedFile{}, id).Error
	})
}

func parseKey(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// Open reads a complete file back.
func (s *DB) Open(ctx context.Context, key string) (File, error) {
	id, ok := parseKey(key)
	if !ok {
		if s.Legacy != nil && !strings.HasPrefix(key, keyPrefix) {
			return s.Legacy.Open(ctx, key)
		}
		return nil, ErrNotFound
	}
	var f storedFile
	err := s.DB.WithContext(ctx).Where("id = ? AND complete", id).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &dbFile{s: s, ctx: ctx, f: f, seq: -1}, nil
}

// Delete removes a file and its chunks.
func (s *DB) Delete(ctx context.Context, key string) error {
	id, ok := parseKey(key)
	if !ok {
		if s.Legacy != nil && key != "" && !strings.HasPrefix(key, keyPrefix) {
			return s.Legacy.Delete(ctx, key)
		}
		return nil
	}
	return s.remove(ctx, id)
}

// SweepIncomplete removes the files a transfer started before cutoff and
// never completed (its process died mid-way), and reports how many.
func (s *DB) SweepIncomplete(ctx context.Context, cutoff time.Time) (int, error) {
	var ids []int64
	if err := s.DB.WithContext(ctx).Model(&storedFile{}).Where("NOT complete AND created_at < ?", cutoff.UTC()).
		Limit(100).Pluck("id", &ids).Error; err != nil {
		return 0, err
	}
	for i, id := range ids {
		if err := s.remove(ctx, id); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}

// dbFile reads a stored file one chunk at a time.
type dbFile struct {
	s   *DB
	ctx context.Context
	f   storedFile
	off int64
	seq int // the chunk in buf; -1 for none
	buf []byte
}

func (d *dbFile) Size() int64  { return d.f.Size }
func (d *dbFile) Close() error { d.buf = nil; return nil }

func (d *dbFile) Read(p []byte) (int, error) {
	if d.off >= d.f.Size {
		return 0, io.EOF
	}
	seq := int(d.off / int64(d.f.ChunkSize))
	if seq != d.seq {
		var c chunk
		err := d.s.DB.WithContext(d.ctx).Where("file_id = ? AND seq = ?", d.f.ID, seq).Take(&c).Error
		if err != nil {
			return 0, fmt.Errorf("read stored file %d chunk %d: %w", d.f.ID, seq, err)
		}
		d.buf, d.seq = c.Data, seq
	}
	at := int(d.off - int64(seq)*int64(d.f.ChunkSize))
	if at >= len(d.buf) {
		return 0, io.ErrUnexpectedEOF // a chunk shorter than its file row says
	}
	n := copy(p, d.buf[at:])
	d.off += int64(n)
	return n, nil
}

func (d *dbFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += d.off
	case io.SeekEnd:
		offset += d.f.Size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	d.off = offset
	return offset, nil
}

// Dir keeps files on the local disk under Root: one instance's store, for
// files written before they were kept in the database.
type Dir struct {
	Root string // the data directory; keys are paths relative to it
}

// Put writes the file under Root/uploads.
func (d Dir) Put(_ context.Context, r io.Reader) (string, int64, error) {
	dir := filepath.Join(d.Root, "uploads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, err
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	key := filepath.Join("uploads", "file-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(filepath.Join(d.Root, key), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(filepath.Join(d.Root, key))
		return "", 0, err
	}
	return key, n, nil
}

func (d Dir) path(key string) (string, bool) {
	clean := filepath.Clean(filepath.FromSlash(key))
	if key == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.Join(d.Root, clean), true
}

// Open opens a file kept on this disk.
func (d Dir) Open(_ context.Context, key string) (File, error) {
	p, ok := d.path(key)
	if !ok {
		return nil, ErrNotFound
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return osFile{f, st.Size()}, nil
}

// Delete removes a file kept on this disk.
func (d Dir) Delete(_ context.Context, key string) error {
	p, ok := d.path(key)
	if !ok {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

type osFile struct {
	*os.File
	size int64
}

func (f osFile) Size() int64 { return f.size }
