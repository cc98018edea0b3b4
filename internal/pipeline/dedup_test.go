package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
)

func TestDedup(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := NewDedup(DedupConfig{Window: 2 * time.Minute, MaxKeys: 1000})
	d.now = func() time.Time { return now }
	d.rotated = now

	steps := []struct {
		name           string
		sensor, metric string
		ts             int64
		advance        time.Duration
		want           bool
	}{
		{"first", "s1", "temperature", 100, 0, false},
		{"same key", "s1", "temperature", 100, 0, true},
		{"other ts", "s1", "temperature", 101, 0, false},
		{"other metric", "s1", "humidity", 100, 0, false},
		{"other sensor", "s2", "temperature", 100, 0, false},
		{"earlier ts of a series", "s1", "temperature", 50, 0, false},
		{"earlier ts remembered", "s1", "temperature", 50, 0, true},
		{"an hour later: past the 32-bit offsets", "s1", "temperature", 100 + 3_600_000_000, 0, false},
		{"an hour later, again", "s1", "temperature", 100 + 3_600_000_000, 0, true},
		{"extreme ts", "s1", "temperature", math.MinInt64, 0, false},
		{"extreme ts, again", "s1", "temperature", math.MinInt64, 0, true},
		{"after half window still seen", "s1", "temperature", 100, 61 * time.Second, true},
		{"far key after half window still seen", "s1", "temperature", 100 + 3_600_000_000, 0, true},
		{"refreshed by the repeat: seen after another half", "s1", "temperature", 100, 61 * time.Second, true},
		{"far key refreshed too", "s1", "temperature", 100 + 3_600_000_000, 0, true},
		{"an unrefreshed key is forgotten after the window", "s2", "temperature", 100, 0, false},
		{"an unrefreshed far key is forgotten after the window", "s1", "temperature", math.MinInt64, 0, false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		d.Tick()
		if got := d.Seen(s.sensor, s.metric, s.ts); got != s.want {
			t.Fatalf("%s: Seen(%s,%s,%d) = %v, want %v", s.name, s.sensor, s.metric, s.ts, got, s.want)
		}
	}
}

func TestDedupMaxKeysBoundsMemory(t *testing.T) {
	d := NewDedup(DedupConfig{Window: time.Hour, MaxKeys: 1000})
	for i := int64(0); i < 10_000; i++ {
		if d.Seen("s", "m", i) {
			t.Fatalf("key %d reported as a duplicate", i)
		}
		if d.Len() > 1000 {
			t.Fatalf("holds %d keys, cap is 1000", d.Len())
		}
	}
	// The most recent MaxKeys/2 keys are always remembered.
	for i := int64(10_000 - 500); i < 10_000; i++ {
		if !d.Seen("s", "m", i) {
			t.Fatalf("recent key %d forgotten", i)
		}
	}
}

func TestDedupOff(t *testing.T) {
	d := NewDedup(DedupConfig{})
	if d.Seen("s", "m", 1) || d.Seen("s", "m", 1) {
		t.Fatal("window 0 must not deduplicate")
	}
}

// TestDedupDropsIdleSeries: a series with no key left is dropped when the generations rotate, and its
// number is reused.
func TestDedupDropsIdleSeries(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := NewDedup(DedupConfig{Window: 2 * time.Minute, MaxKeys: 1000})
	d.now = func() time.Time { return now }
	d.rotated = now
	for i := range 10 {
		d.Seen("s"+strconv.Itoa(i), "m", 1)
	}
	steps := []struct {
		name              string
		active            int // series s0… that report during the step
		rotate            bool
		wantSeries, wantN int
	}{
		{"all ten report", 10, false, 10, 20},
		{"three report, then a rotation", 3, true, 10, 23},
		{"three report, then a rotation: the seven idle ones are dropped", 3, true, 3, 3},
		{"none report, then a rotation", 0, true, 0, 0},
	}
	for k, s := range steps {
		for i := range s.active {
			d.Seen("s"+strconv.Itoa(i), "m", int64(100+k))
		}
		if s.rotate {
			now = now.Add(time.Minute)
			d.Tick()
		}
		if d.Series() != s.wantSeries || d.Len() != s.wantN {
			t.Fatalf("%s: %d series, %d keys; want %d, %d", s.name, d.Series(), d.Len(), s.wantSeries, s.wantN)
		}
	}
	d.Seen("new", "m", 1)
	if len(d.series) != 10 {
		t.Fatalf("series slice has %d entries: numbers of dropped series were not reused", len(d.series))
	}
}

// TestDedupMatchesMapModel feeds the same random traffic to Dedup and to the straightforward
// two-map implementation it replaced (mapDedup) and requires the same answer for every key: in time
// order, out of order, far apart (overflow), with rotations by time and by MaxKeys.
func TestDedupMatchesMapModel(t *testing.T) {
	cases := []struct {
		name    string
		series  int
		maxKeys int
		jitter  int64 // how far a timestamp may fall behind the series' clock, µs
		far     int   // one key in far jumps hours away
		dupPct  int   // % of keys repeated from the recent past
		churn   bool  // the reporting series change over time, then shrink to a few
	}{
		{"in order", 50, 100_000, 0, 0, 5, false},
		{"out of order", 50, 100_000, 5_000_000, 0, 10, false},
		{"random order, big series", 2, 100_000, 1 << 40, 0, 10, false},
		{"random order within 32-bit offsets", 2, 100_000, 1_800_000_000, 0, 10, false},
		{"far timestamps", 20, 100_000, 1_000_000, 7, 10, false},
		{"rotations by max keys", 30, 2000, 2_000_000, 50, 20, false},
		{"many series", 3000, 50_000, 0, 0, 5, false},
		{"series come and go", 3000, 50_000, 0, 7, 5, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			clock := func() time.Time { return now }
			cfg := DedupConfig{Window: 10 * time.Second, MaxKeys: c.maxKeys}
			d, m := NewDedup(cfg), newMapDedup(cfg)
			d.now, m.now = clock, clock
			d.rotated, m.rotated = now, now
			rng := rand.New(rand.NewPCG(7, uint64(c.series)))
			type key struct {
				s  string
				ts int64
			}
			var recent []key
			clocks := map[int]int64{}
			dups := 0
			for i := range 200_000 {
				if i%1000 == 0 {
					now = now.Add(time.Second)
					d.Tick()
					m.Tick()
				}
				var k key
				if len(recent) > 0 && rng.IntN(100) < c.dupPct {
					k = recent[rng.IntN(len(recent))]
				} else {
					s := rng.IntN(c.series)
					if c.churn && i < 100_000 {
						s += i / 2
					} else if c.churn {
						s %= 50
					}
					if clocks[s] == 0 {
						clocks[s] = 1_700_000_000_000_000
					}
					clocks[s] += 1000 + rng.Int64N(1000)
					ts := clocks[s]
					if c.jitter > 0 {
						ts -= rng.Int64N(c.jitter)
					}
					if c.far > 0 && rng.IntN(c.far) == 0 {
						ts += (rng.Int64N(10) - 5) * 3_600_000_000
					}
					k = key{"sensor-" + strconv.Itoa(s), ts}
					if len(recent) < 5000 {
						recent = append(recent, k)
					} else {
						recent[rng.IntN(len(recent))] = k
					}
				}
				got, want := d.Seen(k.s, "m", k.ts), m.Seen(k.s, "m", k.ts)
				if got != want {
					t.Fatalf("key %d (%s, %d): Seen = %v, the map model says %v", i, k.s, k.ts, got, want)
				}
				if got {
					dups++
				}
				if d.Len() != m.Len() {
					t.Fatalf("key %d: Len = %d, the map model holds %d", i, d.Len(), m.Len())
				}
			}
			if dups == 0 {
				t.Fatal("no duplicate was found: the case tests nothing")
			}
		})
	}
}

// mapDedup is the implementation Dedup replaced: a map from (sensor_id, metric) to a series number,
// then a map of (series, ts) per generation. It stays as the reference model of the tests and the
// baseline of the benchmarks. (One change: a key copied from the previous generation counts towards
// MaxKeys/2 too, as in Dedup, so that MaxKeys bounds the keys held.)
type mapDedup struct {
	cfg       DedupConfig
	series    map[seriesKey]uint32
	cur, prev map[dedupKey]struct{}
	rotated   time.Time
	now       func() time.Time
}

func newMapDedup(cfg DedupConfig) *mapDedup {
	d := &mapDedup{cfg: cfg, series: map[seriesKey]uint32{}, now: time.Now}
	d.cur, d.prev = map[dedupKey]struct{}{}, map[dedupKey]struct{}{}
	d.rotated = d.now()
	return d
}

func (d *mapDedup) Seen(sensor, metric string, ts int64) bool {
	sk := seriesKey{sensor, metric}
	id, ok := d.series[sk]
	if !ok {
		id = uint32(len(d.series))
		d.series[sk] = id
	}
	k := dedupKey{id, ts}
	if _, ok := d.cur[k]; ok {
		return true
	}
	_, dup := d.prev[k]
	d.cur[k] = struct{}{}
	if len(d.cur) >= d.cfg.MaxKeys/2 {
		d.rotate()
	}
	return dup
}

func (d *mapDedup) Tick() {
	if d.now().Sub(d.rotated) >= d.cfg.Window/2 {
		d.rotate()
	}
}

func (d *mapDedup) rotate() {
	d.prev = d.cur
	d.cur = make(map[dedupKey]struct{}, len(d.prev))
	d.rotated = d.now()
}

func (d *mapDedup) Len() int { return len(d.cur) + len(d.prev) }

type dedupImpl interface {
	Seen(sensor, metric string, ts int64) bool
	Tick()
	Len() int
}

// BenchmarkDedupSeen: a fleet reporting once a second (timestamps with µs jitter), the default window
// (2 minutes, 4M keys), a simulated clock so the generations rotate as in production; Dedup against
// the two-map implementation it replaced. Reports the heap per key remembered when the window
// holds the most (just before a rotation).
func BenchmarkDedupSeen(b *testing.B) {
	impls := []struct {
		name string
		make func(cfg DedupConfig, clock func() time.Time) dedupImpl
	}{
		{"series", func(cfg DedupConfig, clock func() time.Time) dedupImpl {
			d := NewDedup(cfg)
			d.now, d.rotated = clock, clock()
			return d
		}},
		{"maps", func(cfg DedupConfig, clock func() time.Time) dedupImpl {
			d := newMapDedup(cfg)
			d.now, d.rotated = clock, clock()
			return d
		}},
	}
	for _, fleet := range []int{10_000, 100_000} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("%s/fleet=%d", impl.name, fleet), func(b *testing.B) {
				ids := make([]string, fleet)
				for i := range ids {
					ids[i] = "sensor-" + strconv.Itoa(i)
				}
				jitter := make([]int64, 4096)
				rng := rand.New(rand.NewPCG(1, 2))
				for i := range jitter {
					jitter[i] = rng.Int64N(1000)
				}
				now := time.Unix(1_800_000_000, 0)
				clock := func() time.Time { return now }
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				d := impl.make(DefaultDedupConfig(), clock)
				i := 0
				step := func() {
					s := i % fleet
					if s == 0 {
						now = now.Add(time.Second)
						d.Tick()
					}
					sec := int64(i / fleet)
					d.Seen(ids[s], "temperature", now.UnixMicro()+int64(s)*(1_000_000/int64(fleet))+jitter[(int(sec)+s)&4095])
					i++
				}
				b.ReportAllocs()
				for b.Loop() {
					step()
				}
				b.StopTimer()
				// Fill the window (4 simulated minutes, up to just before a rotation, when it holds the
				// most) and measure what it holds.
				// Time rotations come at i = (59 + 60m) × fleet.
				until := 239 * fleet
				for until <= i {
					until += 60 * fleet
				}
				for i < until {
					step()
				}
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(d.Len()), "heap-bytes/key")
				b.ReportMetric(float64(d.Len()), "keys")
				runtime.KeepAlive(d)
			})
		}
	}
}

// TestDedupSeriesSlot: SeenSeries hands out one slot per (sensor_id, metric), duplicates included; a
// series that leaves the window takes its slot's content with it, also when its number is reused.
func TestDedupSeriesSlot(t *testing.T) {
	d := NewDedup(DedupConfig{Window: time.Minute, MaxKeys: 1000})
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	d.rotated = now
	sa := &lake.Series{SensorID: "a", Metric: "m"}
	dup, slot := d.SeenSeries("a", "m", 1)
	if dup || slot == nil || *slot != nil {
		t.Fatalf("first key: dup %v, slot %v", dup, slot)
	}
	*slot = sa
	if dup, slot := d.SeenSeries("a", "m", 2); dup || *slot != sa {
		t.Fatalf("second key of a: dup %v, slot holds %v, want a's Series", dup, *slot)
	}
	if dup, slot := d.SeenSeries("a", "m", 1); !dup || *slot != sa {
		t.Fatalf("a duplicate: dup %v, slot holds %v, want a's Series", dup, *slot)
	}
	if _, slot := d.SeenSeries("b", "m", 1); *slot != nil {
		t.Fatalf("b's slot holds %v, want nothing", *slot)
	}
	// Two rotations without new keys of a drop it; b, seen again, stays.
	for range 2 {
		now = now.Add(31 * time.Second)
		d.SeenSeries("b", "m", now.UnixMicro())
		d.Tick()
	}
	if _, slot := d.SeenSeries("c", "m", 1); *slot != nil {
		t.Fatalf("a new series (maybe a's reused number) has slot %v, want nothing", *slot)
	}
	if _, slot := d.SeenSeries("a", "m", 3); *slot != nil {
		t.Fatalf("a, back after leaving the window, has slot %v, want nothing", *slot)
	}
	off := NewDedup(DedupConfig{})
	if dup, slot := off.SeenSeries("a", "m", 1); dup || slot != nil {
		t.Fatalf("deduplication off: dup %v slot %v, want false and nil", dup, slot)
	}
}
