package pipeline

import (
	"testing"

	"github.com/sluice-project/sluice/internal/decode"
)

// TestSeriesTable: readings that share sensor, metric, unit and flags share one Series; any of the
// four differing gives another; past max the table starts afresh, and what it handed out is intact.
func TestSeriesTable(t *testing.T) {
	st := seriesTable{max: 4}
	base := decode.Reading{SensorID: "s1", Metric: "temperature", Unit: "C", TS: 1, Value: 2}
	a := st.get(&base)
	again := base
	again.TS, again.Value = 2, 3
	if st.get(&again) != a {
		t.Fatal("same sensor, metric, unit and flags: a second Series")
	}
	if a.SensorID != "s1" || a.Metric != "temperature" || a.Unit != "C" || a.Flags == nil || len(a.Flags) != 0 {
		t.Fatalf("Series = %+v", *a)
	}
	for _, mod := range []func(r *decode.Reading){
		func(r *decode.Reading) { r.SensorID = "s2" },
		func(r *decode.Reading) { r.Metric = "humidity" },
		func(r *decode.Reading) { r.Unit = "F" },
	} {
		r := base
		mod(&r)
		if st.get(&r) == a {
			t.Fatalf("%+v shares the Series of %+v", r, base)
		}
	}
	flagged := base
	flagged.Flags = decode.FlagOutOfRange
	f := st.get(&flagged) // the fifth: the table starts afresh
	if f == a || len(f.Flags) != 1 || f.Flags[0] != "out_of_range" {
		t.Fatalf("flagged reading's Series = %+v", *f)
	}
	if len(st.m) != 1 {
		t.Fatalf("table holds %d series after passing max 4, want 1 (started afresh)", len(st.m))
	}
	if st.get(&base) == a || a.SensorID != "s1" {
		t.Fatal("after starting afresh the old Series was reused or changed")
	}
}
