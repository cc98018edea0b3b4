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
