package pipeline

import (
	"fmt"
	"testing"

	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/lake"
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

// TestSeriesOfDedupSlot: with deduplication on, a series' Series lives in its window slot and the
// series table holds nothing for it; a reading whose unit or flags differ from its series' last one
// gets a Series with its own, through the table; with deduplication off the table serves all.
func TestSeriesOfDedupSlot(t *testing.T) {
	d := &Decoder{series: seriesTable{max: 1000}, dedup: NewDedup(DefaultDedupConfig())}
	of := func(r decode.Reading) *lake.Series {
		_, last := d.dedup.SeenSeries(r.SensorID, r.Metric, r.TS)
		return d.seriesOf(&r, last)
	}
	first := map[string]*lake.Series{}
	for ts := int64(1); ts <= 3; ts++ {
		for i := range 500 {
			id := fmt.Sprintf("s-%d", i)
			s := of(decode.Reading{SensorID: id, Metric: "temperature", Unit: "C", TS: ts})
			if s.SensorID != id || s.Metric != "temperature" || s.Unit != "C" || len(s.Flags) != 0 {
				t.Fatalf("ts %d: Series = %+v", ts, *s)
			}
			if ts == 1 {
				first[id] = s
			} else if s != first[id] {
				t.Fatalf("ts %d: %s got another Series", ts, id)
			}
		}
	}
	if n := len(d.series.m); n != 0 {
		t.Fatalf("series table holds %d entries for series in the window, want 0", n)
	}
	f := of(decode.Reading{SensorID: "s-1", Metric: "temperature", Unit: "F", TS: 4})
	o := of(decode.Reading{SensorID: "s-1", Metric: "temperature", Unit: "C", TS: 5, Flags: decode.FlagOutOfRange})
	c := of(decode.Reading{SensorID: "s-1", Metric: "temperature", Unit: "C", TS: 6})
	if f.Unit != "F" || len(f.Flags) != 0 || o.Unit != "C" || len(o.Flags) != 1 || o.Flags[0] != "out_of_range" || c.Unit != "C" || len(c.Flags) != 0 {
		t.Fatalf("variants: %+v, %+v, %+v", *f, *o, *c)
	}
	if f == first["s-1"] || o == first["s-1"] || f == o {
		t.Fatal("a variant shares another's Series")
	}
	if n := len(d.series.m); n != 3 {
		t.Fatalf("series table holds %d entries after three variants, want 3", n)
	}
	if again := of(decode.Reading{SensorID: "s-1", Metric: "temperature", Unit: "F", TS: 7}); again != f {
		t.Fatal("a variant seen again got a new Series, not the table's")
	}

	off := &Decoder{series: seriesTable{max: 1000}, dedup: NewDedup(DedupConfig{})}
	r := decode.Reading{SensorID: "s-1", Metric: "temperature", Unit: "C", TS: 1}
	_, last := off.dedup.SeenSeries(r.SensorID, r.Metric, r.TS)
	if last != nil {
		t.Fatal("deduplication off returned a slot")
	}
	if s := off.seriesOf(&r, last); s.SensorID != "s-1" || len(off.series.m) != 1 || off.seriesOf(&r, nil) != s {
		t.Fatalf("deduplication off: Series %+v, table holds %d", *s, len(off.series.m))
	}
}
