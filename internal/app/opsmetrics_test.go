package app

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			out[name] = m.GetGauge().GetValue()
		}
	}
	return out
}

// The state metrics read the database on both dialects: uploads by status,
// pending WeChat Pay operations and the oldest one's age; "up" is 0 once
// the database is gone.
func TestStateCollector(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(newStateCollector(db))
		at := time.Now().UTC().Add(-90 * time.Second)
		if err := db.Gorm.Exec(`INSERT INTO wx_operations (kind, request_no, body, status, created_at, updated_at)
			VALUES ('deactivate', 'R1', '{}', 'pending', ?, ?), ('deactivate', 'R2', '{}', 'succeeded', ?, ?)`, at, at, at, at).Error; err != nil {
			t.Fatal(err)
		}
		g := gauges(t, reg)
		if g["console_database_up"] != 1 || g["console_wxpay_operations_pending"] != 1 {
			t.Fatalf("gauges %v", g)
		}
		if age := g["console_wxpay_operation_oldest_pending_seconds"]; age < 80 || age > 3600 {
			t.Fatalf("oldest pending age %v, want about 90 s", age)
		}
		db.Close()
		if g := gauges(t, reg); g["console_database_up"] != 0 {
			t.Fatalf("database closed: %v", g)
		}
	})
}
