package lake

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSortRange: every path of sortRange (in order, a few rows out of place, sorted runs one after
// the other, random) sorts, and keeps rows that compare equal in the order they came.
func TestSortRange(t *testing.T) {
	type row struct{ key, seq int }
	byKey := func(a, b *row) int { return cmp.Compare(a.key, b.key) }
	runs := func(n, parts int) []row { // parts sorted runs of n/parts keys each, all covering the same keys
		var out []row
		for p := range parts {
			for k := range n / parts {
				out = append(out, row{key: k*parts + p})
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]row, 5000)
	for i := range random {
		random[i].key = rng.IntN(100) // many equal keys: stability shows
	}
	fewOut := make([]row, 5000)
	for i := range fewOut {
		fewOut[i].key = i
	}
	fewOut[10], fewOut[4000] = fewOut[4000], fewOut[10]
	tests := []struct {
		name string
		rows []row
	}{
		{"empty", nil},
		{"in order", []row{{key: 1}, {key: 1}, {key: 2}, {key: 5}}},
		{"a few out of place", fewOut},
		{"sorted runs one after the other", runs(30_000, 3)},
		{"random with ties", random},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows := slices.Clone(tc.rows)
			idx := make([]int32, len(rows))
			for i := range rows {
				rows[i].seq = i
				idx[i] = int32(i)
			}
			sortRange(rows, idx, byKey)
			for j := 1; j < len(idx); j++ {
				a, b := rows[idx[j-1]], rows[idx[j]]
				if a.key > b.key || a.key == b.key && a.seq > b.seq {
					t.Fatalf("position %d: %+v before %+v", j, a, b)
				}
			}
		})
	}
}

// BenchmarkSortRangeRuns: 30,000 rows in 3 sorted runs (a commit's minutes of 10,000 sensors), which
// insertion alone would sort in ~10^8 moves.
func BenchmarkSortRangeRuns(b *testing.B) {
	type row struct{ key int }
	base := make([]row, 0, 30_000)
	for p := range 3 {
		for k := range 10_000 {
			base = append(base, row{key: k*3 + p})
		}
	}
	idx := make([]int32, len(base))
	for b.Loop() {
		for i := range idx {
			idx[i] = int32(i)
		}
		sortRange(base, idx, func(a, b *row) int { return cmp.Compare(a.key, b.key) })
	}
}

// BenchmarkOrderReadings: the file order of 1M readings/ rows of 10,000 sensors (100 s, one day),
// as a commit of the in-process benchmark holds them.
func BenchmarkOrderReadings(b *testing.B) {
	rows := ReadingsOf(genReadings(1_000_000, 10_000, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)))
	spec := ReadingsSpec()
	b.ReportAllocs()
	for b.Loop() {
		order(&spec, rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
}
