package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay/sandbox"
)

// scaleCode is the i-th code of the scale tests: codes spread over the
// whole key space (i times an odd constant, modulo 2⁴⁰), so that a new file's
// codes fall between the codes already on the stock, as real codes do,
// rather than all after them. seedCodes writes the same codes in SQL.
func scaleCode(i int64) string { return fmt.Sprintf("K%010x", (i*2654435761)%(1<<40)) }

// scaleFile is codes from+1 … from+n, one a line.
func scaleFile(from, n int64) []byte {
	var b bytes.Buffer
	b.Grow(int(n) * 13)
	for i := from + 1; i <= from+n; i++ {
		b.WriteString(scaleCode(i))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// seedCodes puts codes from+1 … to on the stock as if uploaded, in the
// database itself (generate_series; a recursive CTE on SQLite), then
// updates the statistics as the console does after an upload.
func seedCodes(t testing.TB, db *database.DB, stockRef, from, to int64) {
	t.Helper()
	if to <= from {
		return
	}
	ctx := context.Background()
	var err error
	if db.Dialect == database.Postgres {
		_, err = db.SQL.ExecContext(ctx, `INSERT INTO stock_codes (stock_ref, code, created_at)
			SELECT $1, 'K' || lpad(to_hex((g * 2654435761) % 1099511627776), 10, '0'), now()
			FROM generate_series($2::bigint, $3::bigint) AS g`, stockRef, from+1, to)
		if err == nil {
			_, err = db.SQL.ExecContext(ctx, "ANALYZE stock_codes")
		}
	} else {
		_, err = db.SQL.ExecContext(ctx, `WITH RECURSIVE g(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM g WHERE n < ?)
			INSERT INTO stock_codes (stock_ref, code, created_at)
			SELECT ?, printf('K%010x', (n * 2654435761) % 1099511627776), ? FROM g`, from+1, to, stockRef, time.Now().UTC())
		if err == nil {
			_, err = db.SQL.ExecContext(ctx, "PRAGMA optimize")
		}
	}
	if err != nil {
		t.Fatalf("seed codes: %v", err)
	}
}

// uploadBody is a multipart form with the file, as the upload form sends.
func uploadBody(name string, data []byte) (*bytes.Buffer, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	return &body, mw.FormDataContentType()
}

func scaleConsole(t testing.TB, dialect string) *consoleServer {
	env := map[string]string{}
	if dialect == "postgres" {
		env["CONSOLE_DATABASE_URL"] = testdb.PostgresURL(t)
	}
	return startConsoleTB(t, env)
}

// Acceptance 2 of issue 12: an operator who closes the browser while a
// 1,000,000-code file is being checked stops the check: its upload, its
// rows and its file are removed, and the check never completes. (How long
// that took is logged: a figure, not a pass/fail threshold.)
func TestUploadCheckStopsWhenClientCloses(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			c := scaleConsole(t, dialect)
			op := c.userClient(t, "olivia", models.RoleOperator)
			id := stockRef(t, c, sandbox.SeedStockSending)
			body, ctype := uploadBody("million.csv", scaleFile(0, 1_000_000))

			conns := make(chan net.Conn, 1)
			hc := &http.Client{Jar: op.Jar, Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err == nil {
						conns <- conn
					}
					return conn, err
				},
			}}
			req, _ := http.NewRequest("POST", c.URL+"/stocks/"+id+"/uploads", body)
			req.Header.Set("Content-Type", ctype)
			done := make(chan error, 1)
			go func() {
				resp, err := hc.Do(req)
				if err == nil {
					resp.Body.Close()
					err = fmt.Errorf("the check answered %d before the client went away", resp.StatusCode)
				}
				done <- err
			}()
			conn := <-conns

			// Wait until the check is under way: its first batches are
			// stored and it has not completed.
			var up uploads.Upload
			deadline := time.Now().Add(2 * time.Minute)
			for {
				var ups []uploads.Upload
				if err := c.DB.Gorm.Where("stock_ref = ?", id).Find(&ups).Error; err != nil {
					t.Fatal(err)
				}
				var batches int64
				if len(ups) == 1 {
					up = ups[0]
					if up.Status != uploads.StatusChecking {
						t.Fatalf("the check completed before the client closed: %s", up.Status)
					}
					c.DB.Gorm.Model(&uploads.Batch{}).Where("upload_id = ?", up.ID).Count(&batches)
				}
				if batches > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the check did not start")
				}
				time.Sleep(5 * time.Millisecond)
			}
			closed := time.Now()
			conn.Close()
			if err := <-done; err == nil || strings.Contains(err.Error(), "answered") {
				t.Fatalf("client: %v", err)
			}

			for {
				var n, rows int64
				c.DB.Gorm.Model(&uploads.Upload{}).Where("id = ?", up.ID).Count(&n)
				var b, p int64
				c.DB.Gorm.Model(&uploads.Batch{}).Where("upload_id = ?", up.ID).Count(&b)
				c.DB.Gorm.Model(&uploads.Problem{}).Where("upload_id = ?", up.ID).Count(&p)
				rows = b + p
				f, statErr := c.Uploads.OpenFile(context.Background(), &up)
				if f != nil {
					f.Close()
				}
				if n == 0 && rows == 0 && errors.Is(statErr, uploads.ErrFileGone) {
					break
				}
				if time.Since(closed) > time.Minute {
					t.Fatalf("a minute after the client closed: upload %d rows, %d batch and problem rows, file %v", n, rows, statErr)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("%s: check stopped and removed %s after the client closed", dialect, time.Since(closed).Round(time.Millisecond))
			// It stays stopped: nothing of it comes back.
			time.Sleep(200 * time.Millisecond)
			var n int64
			c.DB.Gorm.Model(&uploads.Upload{}).Where("stock_ref = ?", id).Count(&n)
			if n != 0 {
				t.Fatalf("%d uploads after the check was stopped", n)
			}
			var detail string
			c.DB.Gorm.Raw("SELECT detail FROM audit_entries WHERE action = ? ORDER BY seq DESC LIMIT 1", uploads.ActionCheck).Scan(&detail)
			if !strings.Contains(detail, "request_ended") {
				t.Fatalf("audit detail of the stopped check: %s", detail)
			}
		})
	}
}

// BenchmarkUploadCheckScale is acceptance 1 of issue 12: an operator checks a
// file of N codes (default 1,000,000; CONSOLE_BENCH_CHECK_CODES) through
// HTTP — upload, then the dry-run page — against a stock holding 0 codes,
// then 1,000,000 and 5,000,000 (CONSOLE_BENCH_STOCK_CODES, comma-separated),
// seeded in the database. At each size it checks a file of new codes
// (spread among the stock's) and, once the stock holds N, a file of N codes
// all already on it. Each figure is reported with its ratio to the check of
// new codes on the empty stock, measured in the same run (goals: new ≤ 1.5,
// known ≤ 2).
//
//	go test -run '^$' -bench 'UploadCheckScale/postgres' -benchtime 1x -timeout 60m ./internal/e2e/
//	CONSOLE_BENCH_CHECK_CODES=100000 CONSOLE_BENCH_STOCK_CODES=100000,500000 go test -run '^$' -bench UploadCheckScale -benchtime 1x ./internal/e2e/
func BenchmarkUploadCheckScale(b *testing.B) {
	n := int64(1_000_000)
	if v := os.Getenv("CONSOLE_BENCH_CHECK_CODES"); v != "" {
		n, _ = strconv.ParseInt(v, 10, 64)
	}
	sizes := []int64{1_000_000, 5_000_000}
	if v := os.Getenv("CONSOLE_BENCH_STOCK_CODES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			s, _ := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			sizes = append(sizes, s)
		}
	}
	for _, dialect := range []string{"postgres", "sqlite"} {
		b.Run(dialect, func(b *testing.B) {
			for b.Loop() {
				c := scaleConsole(b, dialect)
				op := c.userClientTB(b, "olivia", models.RoleOperator)
				var st models.Stock
				if err := c.DB.Gorm.Where("stock_id = ?", sandbox.SeedStockSending).Take(&st).Error; err != nil {
					b.Fatal(err)
				}
				ref, id := st.ID, strconv.FormatInt(st.ID, 10)
				checkOnce := func(from int64, label string) time.Duration {
					body, ctype := uploadBody(label+".csv", scaleFile(from, n))
					start := time.Now()
					req, _ := http.NewRequest("POST", c.URL+"/stocks/"+id+"/uploads", body)
					req.Header.Set("Content-Type", ctype)
					resp, err := op.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusSeeOther {
						b.Fatalf("%s: %d", label, resp.StatusCode)
					}
					page := c.URL + resp.Header.Get("Location")
					resp, err = op.Get(page)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					d := time.Since(start)
					upID, _ := strconv.ParseInt(page[strings.LastIndex(page, "/")+1:], 10, 64)
					var u uploads.Upload
					if err := c.DB.Gorm.Take(&u, upID).Error; err != nil {
						b.Fatal(err)
					}
					if u.Status != uploads.StatusChecked || u.RowsRead != n {
						b.Fatalf("%s: %+v", label, u)
					}
					// Drop its batches, as abandoning does, so that they do not
					// weigh on the next check.
					c.DB.Gorm.Where("upload_id = ?", upID).Delete(&uploads.Batch{})
					c.DB.Gorm.Where("upload_id = ?", upID).Delete(&uploads.Problem{})
					b.Logf("%s: %s: %d codes, %d known, %d to send: %s", dialect, label, u.RowsRead, u.KnownCount, u.CodesTotal, d.Round(time.Millisecond))
					return d
				}
				b.StopTimer()
				base := checkOnce(0, "new-on-empty")
				b.ReportMetric(base.Seconds(), "empty-s")
				held := int64(0)
				for _, size := range sizes {
					t0 := time.Now()
					seedCodes(b, c.DB, ref, held, size)
					held = size
					b.Logf("%s: stock holds %d codes (seeded in %s)", dialect, held, time.Since(t0).Round(time.Second))
					d := checkOnce(held, fmt.Sprintf("new-on-%d", held))
					b.ReportMetric(d.Seconds(), fmt.Sprintf("new-at-%d-s", held))
					b.ReportMetric(d.Seconds()/base.Seconds(), fmt.Sprintf("new-at-%d-ratio", held))
					if held >= n {
						d = checkOnce(0, fmt.Sprintf("known-on-%d", held))
						b.ReportMetric(d.Seconds(), fmt.Sprintf("known-at-%d-s", held))
						b.ReportMetric(d.Seconds()/base.Seconds(), fmt.Sprintf("known-at-%d-ratio", held))
					}
				}
				b.StartTimer()
			}
		})
	}
}
