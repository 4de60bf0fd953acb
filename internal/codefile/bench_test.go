package codefile

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"runtime"
	"sync"
	"testing"
)

// benchFiles are 1,000,000-code files, each built once per test binary
// when first needed:
//   - codes: one code per line, CRLF (Excel saving a single column);
//   - columns: header coupon_code,remark and a remark on every row.
//
// Codes are 20 characters and all distinct, the worst case for the
// duplicate table.
var benchFiles = map[string]func() []byte{
	"codes":   sync.OnceValue(func() []byte { return buildBenchFile("", "\r\n") }),
	"columns": sync.OnceValue(func() []byte { return buildBenchFile("coupon_code,remark\r\n", ",batch 2026-05\r\n") }),
}

var benchNames = []string{"codes", "columns"}

func buildBenchFile(hdr, suffix string) []byte {
	g := &genReader{n: 1_000_000, hdr: hdr, line: func(i int, b []byte) []byte {
		return append(appendCode(b, i), suffix...)
	}}
	data, err := io.ReadAll(g)
	if err != nil {
		panic(err)
	}
	return data
}

// BenchmarkRead1M reads, validates and deduplicates a 1,000,000-code file,
// from a bytes.Reader ("sized": Read sizes its duplicate table from the
// reader's Size) and from a reader that hides its size ("streamed", as from
// a network stream: the table grows as it goes).
//
// Besides time and allocations it reports peak-heap-MB: how far the heap in
// use grew above what it was before the read (the input file is already in
// memory then), sampled every 131,072 rows. It includes garbage not yet
// collected, so it is an upper bound on what the reader needs.
func BenchmarkRead1M(b *testing.B) {
	for _, name := range benchNames {
		for _, sized := range []bool{true, false} {
			sub := name + "/streamed"
			if sized {
				sub = name + "/sized"
			}
			b.Run(sub, func(b *testing.B) {
				data := benchFiles[name]()
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				base, peak := ms.HeapInuse, ms.HeapInuse
				for b.Loop() {
					var r io.Reader = bytes.NewReader(data)
					if !sized {
						r = struct{ io.Reader }{r}
					}
					rows := 0
					sum, err := Read(context.Background(), r, ProductCoupon, func(r Row) error {
						if rows++; rows%(1<<17) == 0 {
							runtime.ReadMemStats(&ms)
							peak = max(peak, ms.HeapInuse)
						}
						return nil
					})
					if err != nil || sum.Valid != 1_000_000 {
						b.Fatalf("Read: %+v, %v", sum, err)
					}
				}
				b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-MB")
			})
		}
	}
}

// BenchmarkPlainCSV1M is the baseline: encoding/csv reading the same bytes,
// with no validation or deduplication.
func BenchmarkPlainCSV1M(b *testing.B) {
	for _, name := range benchNames {
		b.Run(name, func(b *testing.B) {
			data := benchFiles[name]()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r := csv.NewReader(bytes.NewReader(data))
				n := 0
				for {
					_, err := r.Read()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n < 1_000_000 {
					b.Fatalf("read %d records", n)
				}
			}
		})
	}
}
