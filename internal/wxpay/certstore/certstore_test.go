package certstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/certstore"
	"voucherconsole/internal/wxpay/sandbox"
)

var keys = sync.OnceValues(sandbox.GenerateKeys)

// instance is one console's client: its own connection pool to the shared
// database and its own certificate cache.
func instance(t *testing.T, sb *sandbox.Sandbox, url string, db *database.DB, clk *sandbox.Clock) *wxpay.Client {
	t.Helper()
	cr := sb.Credentials()
	c, err := wxpay.NewClient(wxpay.Config{
		BaseURL: url,
		MchID:   cr.MchID, MchSerial: cr.MchSerial, MchKey: cr.MchKey, MchAPIv3Key: cr.MchAPIv3Key,
		SPMchID: cr.SPMchID, SPSerial: cr.SPSerial, SPKey: cr.SPKey, SPAPIv3Key: cr.SPAPIv3Key,
		BrandID: cr.BrandID, BrandSerial: cr.BrandSerial, BrandKey: cr.BrandKey, BrandAPIv3Key: cr.BrandAPIv3Key,
		CertStorage: &certstore.Store{DB: db.Gorm}, CertRefreshEvery: 12 * time.Hour, Now: clk.Now,
		Rates: map[wxpay.Endpoint]wxpay.Rate{wxpay.EndpointGetBusifavorStock: {N: -1}}, // the clock stands still
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Two instances on one database download once per refresh: whichever
// claims the refresh downloads and stores, the other reads what it stored
// and verifies replies with it without a download of its own.
func TestTwoInstancesDownloadOncePerRefresh(t *testing.T) {
	k, err := keys()
	if err != nil {
		t.Fatal(err)
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var dbs [2]*database.DB
			if dialect == "postgres" {
				// Two pools on one PostgreSQL database, as two instances have.
				url := testdb.PostgresURL(t)
				for i := range dbs {
					db, err := database.Open(t.Context(), url, "")
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { db.Close() })
					if i == 0 {
						if _, err := db.Migrate(t.Context(), nil); err != nil {
							t.Fatal(err)
						}
					}
					dbs[i] = db
				}
			} else {
				db := testdb.SQLite(t)
				dbs = [2]*database.DB{db, db}
			}
			clk := sandbox.NewClock(time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC))
			sb, err := sandbox.New(sandbox.Options{Seed: true, Clock: clk, Keys: k, VerifyMode: sandbox.VerifyCertificate})
			if err != nil {
				t.Fatal(err)
			}
			var downloads atomic.Int64
			h := sb.Handler()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v3/certificates" {
					downloads.Add(1)
				}
				h.ServeHTTP(w, r)
			}))
			t.Cleanup(func() { srv.Close(); sb.Close() })
			a, b := instance(t, sb, srv.URL, dbs[0], clk), instance(t, sb, srv.URL, dbs[1], clk)

			refreshBoth := func() {
				var wg sync.WaitGroup
				for _, c := range []*wxpay.Client{a, b} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := c.RefreshCertificates(context.Background()); err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
			}
			refreshBoth()
			if n := downloads.Load(); n != 3 {
				t.Fatalf("first refresh: %d downloads, want 3 (one per account)", n)
			}
			refreshBoth() // not due: reads the store
			if n := downloads.Load(); n != 3 {
				t.Fatalf("refresh not due: %d downloads", n)
			}
			for _, c := range []*wxpay.Client{a, b} {
				for _, acct := range c.Accounts() {
					if len(acct.Certificates) != 1 {
						t.Errorf("%s holds %d certificates", acct.Kind, len(acct.Certificates))
					}
				}
				if _, err := c.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload); err != nil {
					t.Fatal(err)
				}
			}
			if n := downloads.Load(); n != 3 {
				t.Errorf("calls downloaded again: %d", n)
			}
			clk.Advance(12*time.Hour + time.Second)
			refreshBoth()
			if n := downloads.Load(); n != 6 {
				t.Errorf("second refresh: %d downloads, want 6", n)
			}
			// A rotation seen by one instance is stored; the other finds the
			// new certificate in the store rather than downloading.
			if _, err := sb.Rotate(time.Hour, "merchant"); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Minute)
			if _, err := a.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload); err != nil {
				t.Fatal(err)
			}
			if _, err := b.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload); err != nil {
				t.Fatal(err)
			}
			if n := downloads.Load(); n != 7 {
				t.Errorf("after rotation: %d downloads, want 7", n)
			}
		})
	}
}
