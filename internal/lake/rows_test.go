package lake

import (
	"slices"
	"testing"
	"unsafe"
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
