package pipeline

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/sluice-project/sluice/internal/lake"
)

func TestRollup1m(t *testing.T) {
	m := ts("2026-11-24T10:00:00Z") // a minute's start
	r := func(sensor string, at, id int64, v float64) lake.Reading {
		return lake.Reading{Series: &lake.Series{SensorID: sensor, Metric: "temperature"}, TS: at, Value: v, IngestID: id}
	}
	minute := int64(60_000_000)
	tests := []struct {
		name string
		rows []lake.Reading
		keep func(*lake.Reading) bool
		want []lake.Reading1mRow
	}{
		{name: "nothing", want: nil},
		{
			name: "one minute, out of order",
			rows: []lake.Reading{r("a", m+30e6, 0, 2), r("a", m+10e6, 1, 5), r("a", m+59_999_999, 2, -1), r("a", m, 3, 4)},
			want: []lake.Reading1mRow{{SensorID: "a", Metric: "temperature", Minute: m, Count: 4, Sum: 10, Min: -1, Max: 5,
				FirstTS: m, First: 4, LastTS: m + 59_999_999, Last: -1}},
		},
		{
			name: "minute boundaries and sensors interleaved",
			rows: []lake.Reading{r("a", m-1, 0, 1), r("b", m, 1, 2), r("a", m, 2, 3), r("b", m+minute, 3, 4), r("a", m+1, 4, 5)},
			want: []lake.Reading1mRow{
				{SensorID: "a", Metric: "temperature", Minute: m - minute, Count: 1, Sum: 1, Min: 1, Max: 1, FirstTS: m - 1, First: 1, LastTS: m - 1, Last: 1},
				{SensorID: "b", Metric: "temperature", Minute: m, Count: 1, Sum: 2, Min: 2, Max: 2, FirstTS: m, First: 2, LastTS: m, Last: 2},
				{SensorID: "a", Metric: "temperature", Minute: m, Count: 2, Sum: 8, Min: 3, Max: 5, FirstTS: m, First: 3, LastTS: m + 1, Last: 5},
				{SensorID: "b", Metric: "temperature", Minute: m + minute, Count: 1, Sum: 4, Min: 4, Max: 4, FirstTS: m + minute, First: 4, LastTS: m + minute, Last: 4},
			},
		},
		{
			name: "before 1970 floors to the minute",
			rows: []lake.Reading{r("a", -1, 0, 7), r("a", -minute, 1, 8)},
			want: []lake.Reading1mRow{{SensorID: "a", Metric: "temperature", Minute: -minute, Count: 2, Sum: 15, Min: 7, Max: 8,
				FirstTS: -minute, First: 8, LastTS: -1, Last: 7}},
		},
		{
			name: "same ts: first met is first, last met is last",
			rows: []lake.Reading{r("a", m, 0, 1), r("a", m, 1, 2), r("a", m, 2, 3)},
			want: []lake.Reading1mRow{{SensorID: "a", Metric: "temperature", Minute: m, Count: 3, Sum: 6, Min: 1, Max: 3,
				FirstTS: m, First: 1, LastTS: m, Last: 3}},
		},
		{
			// Rows sharing a Series take the fast path; another Series of the sensor (its unit
			// differs) and a row back in an earlier minute find their row through the minutes.
			name: "interned series, one of them twice, and a late row",
			rows: func() []lake.Reading {
				c := &lake.Series{SensorID: "a", Metric: "temperature", Unit: "C"}
				k := &lake.Series{SensorID: "a", Metric: "temperature", Unit: "K"}
				return []lake.Reading{{Series: c, TS: m, Value: 1}, {Series: k, TS: m + 1, Value: 2}, {Series: c, TS: m + 2, Value: 3},
					{Series: c, TS: m + minute, Value: 4}, {Series: c, TS: m + 3, Value: 5}, {Series: k, TS: m + minute + 1, Value: 6}}
			}(),
			want: []lake.Reading1mRow{
				{SensorID: "a", Metric: "temperature", Minute: m, Count: 4, Sum: 11, Min: 1, Max: 5, FirstTS: m, First: 1, LastTS: m + 3, Last: 5},
				{SensorID: "a", Metric: "temperature", Minute: m + minute, Count: 2, Sum: 10, Min: 4, Max: 6, FirstTS: m + minute, First: 4, LastTS: m + minute + 1, Last: 6},
			},
		},
		{
			name: "keep filters rows",
			rows: []lake.Reading{r("a", m, 5, 1), r("a", m+1, 6, 2), r("a", m+2, 7, 3)},
			keep: func(r *lake.Reading) bool { return r.IngestID > 5 },
			want: []lake.Reading1mRow{{SensorID: "a", Metric: "temperature", Minute: m, Count: 2, Sum: 5, Min: 2, Max: 3,
				FirstTS: m + 1, First: 2, LastTS: m + 2, Last: 3}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Rollup1m(tc.rows, tc.keep); !slices.Equal(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

type minuteOut struct {
	SensorID string  `parquet:"sensor_id"`
	Metric   string  `parquet:"metric"`
	Minute   int64   `parquet:"minute"`
	Count    int64   `parquet:"count"`
	Sum      float64 `parquet:"sum"`
	Min      float64 `parquet:"min"`
	Max      float64 `parquet:"max"`
	First    float64 `parquet:"first"`
	Last     float64 `parquet:"last"`
}

// mergedMinutes reads readings_1m/ and merges the rows of each (sensor_id, metric, minute), as the
// SQL view does.
func mergedMinutes(t *testing.T, lk *lake.Lake) map[string]minuteOut {
	t.Helper()
	out := map[string]minuteOut{}
	for _, r := range readTable[minuteOut](t, lk, "readings_1m") {
		k := fmt.Sprintf("%s/%s/%d", r.SensorID, r.Metric, r.Minute)
		if m, ok := out[k]; ok {
			r.Count += m.Count
			r.Sum += m.Sum
			r.Min, r.Max = min(r.Min, m.Min), max(r.Max, m.Max)
		}
		out[k] = r
	}
	return out
}

// TestDecoderWritesMinutesOnce: readings_1m/ holds each reading once, across many commits that cut
// minutes in pieces, a restart, and a crash between its commit and the readings/ commit.
func TestDecoderWritesMinutesOnce(t *testing.T) {
	r := newRig(t)
	r.flushRows = 70 // a commit per fetch of the log (4 of them), each ending inside a minute
	base := ts("2026-11-24T10:00:00Z") / 1000
	const n = 14_000
	for i := range n { // s0..s6, one reading a second each: 34 minutes from 10:00
		r.publish("sensors", fmt.Sprintf(`{"sensor_id":"s%d","timestamp":%d,"value":%d}`, i%7, base+int64(i/7)*1000, i))
	}
	r.run()
	check := func(stage string, readings int) {
		t.Helper()
		got := mergedMinutes(t, r.lk)
		want := map[string]minuteOut{}
		for _, g := range readTable[readingOut](t, r.lk, "readings") {
			minute := g.TS - g.TS%60_000_000
			k := fmt.Sprintf("%s/%s/%d", g.SensorID, g.Metric, minute)
			w, ok := want[k]
			if !ok {
				w = minuteOut{Min: g.Value, Max: g.Value}
			}
			w.Count++
			w.Sum += g.Value
			w.Min, w.Max = min(w.Min, g.Value), max(w.Max, g.Value)
			want[k] = w
		}
		total := 0
		for _, w := range want {
			total += int(w.Count)
		}
		if total != readings {
			t.Fatalf("%s: readings/ holds %d readings, want %d", stage, total, readings)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: readings_1m/ has %d minutes, readings/ %d", stage, len(got), len(want))
		}
		for k, w := range want {
			g := got[k]
			if g.Count != w.Count || g.Sum != w.Sum || g.Min != w.Min || g.Max != w.Max {
				t.Fatalf("%s: minute %s = count %d sum %v min %v max %v; readings/ says count %d sum %v min %v max %v",
					stage, k, g.Count, g.Sum, g.Min, g.Max, w.Count, w.Sum, w.Min, w.Max)
			}
		}
	}
	check("first run", n)
	if parts := len(readTable[minuteOut](t, r.lk, "readings_1m")); parts <= 7*34 {
		t.Fatalf("readings_1m/ has %d rows for 7 × 34 minutes: the commits should have cut some in pieces", parts)
	}
	r.run() // a restart adds nothing
	check("restart", n)

	// A crash after readings_1m/ committed and before readings/ did: commit the minutes by hand,
	// then let a new process replay the log.
	var extra []lake.Reading
	for i := n; i < n+14; i++ {
		at := (base + int64(i/7)*1000) * 1000
		r.publish("sensors", fmt.Sprintf(`{"sensor_id":"s%d","timestamp":%d,"value":%d}`, i%7, at/1000, i))
		metric := "value" // unregistered sensors' readings; s1 is a registered temperature sensor
		if i%7 == 1 {
			metric = "temperature"
		}
		extra = append(extra, lake.Reading{Series: &lake.Series{SensorID: fmt.Sprintf("s%d", i%7), Metric: metric}, TS: at, Value: float64(i), IngestID: int64(i)})
	}
	mw, err := lake.NewWriter(context.Background(), r.lk, lake.Readings1mSpec(), lake.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The crashed process had committed the minutes of the first 7 only; the replay's batch covers
	// all 14, so its commit is not a repeat of that one and must leave the 7 out by itself.
	if _, err := mw.BatchOf(Rollup1m(extra[:7], nil)).Commit(context.Background(), DecoderAppID(0), n+6); err != nil {
		t.Fatal(err)
	}
	r.run()
	check("replay after a crash between the commits", n+14)
}

// BenchmarkRollup1m: a commit's worth of rows (1M, 1,000 sensors interleaved as they arrive, 1 Hz).
func BenchmarkRollup1m(b *testing.B) {
	const sensors = 1000
	ids := make([]*lake.Series, sensors)
	for i := range ids {
		ids[i] = &lake.Series{SensorID: fmt.Sprintf("sensor-%04d", i), Metric: "temperature"}
	}
	rows := make([]lake.Reading, 1_000_000)
	start := ts("2026-11-24T10:00:00Z")
	for i := range rows {
		rows[i] = lake.Reading{Series: ids[i%sensors], TS: start + int64(i/sensors)*1_000_000, Value: float64(i % 97), IngestID: int64(i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		if out := Rollup1m(rows, nil); len(out) != sensors*17 {
			b.Fatalf("%d minutes", len(out))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
}
