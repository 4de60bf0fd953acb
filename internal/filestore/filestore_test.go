package filestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"

	"voucherconsole/internal/database"
	"voucherconsole/internal/filestore"
	"voucherconsole/internal/testdb"
)

// A file is kept in chunks and read back whole, from any offset; a failed
// transfer leaves nothing; deleted files are gone; legacy keys read from
// the data directory.
func TestDBStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		s := &filestore.DB{DB: db.Gorm, ChunkSize: 1000, Legacy: filestore.Dir{Root: dir}}
		for _, size := range []int{0, 1, 999, 1000, 1001, 4567} {
			data := make([]byte, size)
			rand.Read(data)
			key, n, err := s.Put(ctx, iotest.HalfReader(bytes.NewReader(data)))
			if err != nil || n != int64(size) {
				t.Fatalf("put %d: %v %d", size, err, n)
			}
			f, err := s.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if err := iotest.TestReader(f, data); err != nil {
				t.Errorf("size %d: %v", size, err)
			}
			f.Close()
			var chunks int64
			db.Gorm.Table("stored_file_chunks").Where("file_id = (SELECT MAX(id) FROM stored_files)").Count(&chunks)
			if want := (size + 999) / 1000; chunks != int64(want) {
				t.Errorf("size %d kept in %d chunks, want %d", size, chunks, want)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Open(ctx, key); !errors.Is(err, filestore.ErrNotFound) {
				t.Fatalf("deleted file opens: %v", err)
			}
		}

		// A transfer cut off mid-way leaves no file and no chunk.
		broken := io.MultiReader(bytes.NewReader(make([]byte, 2500)), iotest.ErrReader(errors.New("connection reset")))
		if _, _, err := s.Put(ctx, broken); err == nil {
			t.Fatal("a broken transfer was kept")
		}
		var files, chunks int64
		db.Gorm.Table("stored_files").Count(&files)
		db.Gorm.Table("stored_file_chunks").Count(&chunks)
		if files != 0 || chunks != 0 {
			t.Fatalf("left %d files, %d chunks", files, chunks)
		}

		// Incomplete files older than the cutoff are swept.
		db.Gorm.Exec("INSERT INTO stored_files (chunk_size, created_at) VALUES (10, ?)", time.Now().UTC().Add(-2*time.Hour))
		if n, err := s.SweepIncomplete(ctx, time.Now().Add(-time.Hour)); err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}

		// Keys of files kept on disk before read from the data directory;
		// unknown or escaping keys are not found.
		os.MkdirAll(filepath.Join(dir, "uploads"), 0o700)
		os.WriteFile(filepath.Join(dir, "uploads", "7"), []byte("A1\n"), 0o600)
		f, err := s.Open(ctx, "uploads/7")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != "A1\n" || f.Size() != 3 {
			t.Fatalf("legacy file: %q", b)
		}
		for _, key := range []string{"db:999", "db:x", "uploads/8", "../etc/passwd", "/etc/passwd", ""} {
			if _, err := s.Open(ctx, key); !errors.Is(err, filestore.ErrNotFound) {
				t.Errorf("open %q: %v", key, err)
			}
		}
	})
}
