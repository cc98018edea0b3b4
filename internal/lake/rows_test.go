package lake

import (
	"bytes"
	"slices"
	"testing"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// TestReadingsOf: rows that differ only in time, value and ids share one Series; a different unit or
// flag set gets its own; Row gives back the row it came from, with an empty list for no flags.
func TestReadingsOf(t *testing.T) {
	if n := unsafe.Sizeof(Reading{}); n != 40 {
		t.Fatalf("a Reading takes %d bytes, want 40", n)
	}
	rows := []ReadingRow{
		{SensorID: "a", Metric: "t", TS: 1, Value: 1.5, Unit: "C", ReceivedAt: 10, IngestID: 100},
		{SensorID: "a", Metric: "t", TS: 2, Value: 2.5, Unit: "C", ReceivedAt: 20, IngestID: 101},
		{SensorID: "a", Metric: "t", TS: 3, Value: 99, Unit: "C", ReceivedAt: 30, IngestID: 102, Flags: []string{"out_of_range"}},
		{SensorID: "a", Metric: "t", TS: 4, Value: 4, Unit: "F", ReceivedAt: 40, IngestID: 103},
		{SensorID: "b", Metric: "t", TS: 1, Value: 7, Unit: "C", ReceivedAt: 50, IngestID: 104, Flags: []string{}},
	}
	rs := ReadingsOf(rows)
	if rs[0].Series != rs[1].Series {
		t.Fatal("two readings of one sensor, metric, unit and flags have different Series")
	}
	for i, j := range [][2]int{{0, 2}, {0, 3}, {0, 4}, {2, 3}} {
		if rs[j[0]].Series == rs[j[1]].Series {
			t.Fatalf("case %d: rows %d and %d share a Series", i, j[0], j[1])
		}
	}
	for i := range rows {
		got := rs[i].Row()
		want := rows[i]
		if want.Flags == nil {
			want.Flags = []string{}
		}
		if got.SensorID != want.SensorID || got.Metric != want.Metric || got.TS != want.TS || got.Value != want.Value ||
			got.Unit != want.Unit || got.ReceivedAt != want.ReceivedAt || got.IngestID != want.IngestID ||
			got.Flags == nil || !slices.Equal(got.Flags, want.Flags) {
			t.Fatalf("row %d: Row() = %+v, want %+v", i, got, want)
		}
	}
}

// TestReadingsFileBytes: a readings/ file written from Readings (converted a chunk at a time, through
// the sort permutation) has exactly the bytes of one written from the same rows as ReadingRows.
func TestReadingsFileBytes(t *testing.T) {
	const n = 3*chunkRows + 723 // past the first minute (600 rows): several chunks and a partial one
	spec := ReadingsSpec()
	readings := testReadings(n)
	cfg := DefaultConfig()
	opts := writerOptions(spec, spec.FileSchema(), cfg)
	var viaReadings bytes.Buffer
	w := spec.encoding().writer(&viaReadings, opts)
	parts, perm := order(&spec, readings)
	p := parts[len(parts)-1] // the second day: all but the first minute
	if err := w.write(readings, p.lo, p.hi, perm[p.lo:p.hi]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows := make([]ReadingRow, 0, p.hi-p.lo)
	for _, i := range perm[p.lo:p.hi] {
		rows = append(rows, readings[i].Row())
	}
	var direct bytes.Buffer
	pw := parquet.NewGenericWriter[ReadingRow](&direct, opts...)
	if _, err := pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2*chunkRows || !bytes.Equal(viaReadings.Bytes(), direct.Bytes()) {
		t.Fatalf("file from Readings: %d bytes; from ReadingRows: %d bytes (%d rows); want the same bytes",
			viaReadings.Len(), direct.Len(), len(rows))
	}
}

// writeBoth writes rows (through perm when it is not nil) once with writeGroups on workers
// goroutines and once serially, and returns both files.
func writeBoth[T any](t *testing.T, spec Spec[T], cfg Config, rows []T, lo, hi int, perm []int32, workers int) (parallel, serial []byte) {
	t.Helper()
	opts := writerOptions(spec, spec.FileSchema(), cfg)
	write := func(workers int) []byte {
		var buf bytes.Buffer
		w := spec.encoding().writer(&buf, opts)
		if err := writeGroups(w, spec.encoding(), opts, cfg.RowGroupRows, workers, rows, lo, hi, perm); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	return write(workers), write(1)
}

// TestWriteGroupsSameBytes: a file whose row groups were encoded in parallel and assembled by
// copying their column chunks has exactly the bytes of the file written serially, for readings/
// (through the sort permutation, a partial last group) and raw/ (rows as they are, a payload column
// without page bounds), with fewer workers than groups and more; and it reads back as those rows in
// row groups of row_group_rows.
func TestWriteGroupsSameBytes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RowGroupRows = 1024
	readings := testReadings(5*1024 + 300)
	rspec := ReadingsSpec()
	parts, perm := order(&rspec, readings)
	p := parts[len(parts)-1]
	raw := genRaw(3*1024+1, 50, benchStart)
	for _, workers := range []int{2, 3, 16} {
		par, ser := writeBoth(t, rspec, cfg, readings, p.lo, p.hi, perm[p.lo:p.hi], workers)
		if !bytes.Equal(par, ser) {
			t.Fatalf("readings, %d workers: parallel file %d bytes, serial %d bytes; want the same bytes", workers, len(par), len(ser))
		}
		par, ser = writeBoth(t, RawSpec(), cfg, raw, 0, len(raw), nil, workers)
		if !bytes.Equal(par, ser) {
			t.Fatalf("raw, %d workers: parallel file %d bytes, serial %d bytes; want the same bytes", workers, len(par), len(ser))
		}
	}
	par, _ := writeBoth(t, rspec, cfg, readings, p.lo, p.hi, perm[p.lo:p.hi], 4)
	f, err := parquet.OpenFile(bytes.NewReader(par), int64(len(par)))
	if err != nil {
		t.Fatal(err)
	}
	n := p.hi - p.lo
	if got, want := len(f.RowGroups()), (n+1023)/1024; got != want || f.NumRows() != int64(n) {
		t.Fatalf("parallel file: %d row groups, %d rows; want %d groups, %d rows", got, f.NumRows(), want, n)
	}
	got, err := parquet.Read[ReadingRow](bytes.NewReader(par), int64(len(par)))
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range perm[p.lo:p.hi] {
		want := readings[j].Row()
		if g := got[i]; g.SensorID != want.SensorID || g.TS != want.TS || g.Value != want.Value || g.IngestID != want.IngestID {
			t.Fatalf("row %d: %+v, want %+v", i, g, want)
		}
	}
}
