package pipeline

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluice-project/sluice/internal/config"
	"github.com/sluice-project/sluice/internal/lake"
)

// DedupConfig bounds the duplicate-removal window of the decoder.
type DedupConfig struct {
	Window  time.Duration `yaml:"window" doc:"Readings with the same (sensor_id, metric, ts) that arrive within this long of each other are stored once. 0 turns deduplication off (not recommended: MQTT redelivers after reconnects)."`
	MaxKeys int           `yaml:"max_keys" doc:"Most keys remembered (about 4.5 bytes each, plus about 130 bytes per distinct (sensor_id, metric) with keys in the window: 5.5 bytes a key at 60 keys per sensor); when reached the window shortens. Bounds memory at high rates."`
}

// DefaultDedupConfig remembers two minutes of keys, at most four million (~40 MiB when full: 100,000
// sensors at 1 Hz fill it; a fleet of 10,000 at 1 Hz holds 1.2M keys, ~7 MiB).
func DefaultDedupConfig() DedupConfig {
	return DedupConfig{Window: 2 * time.Minute, MaxKeys: 4_000_000}
}

// Validate implements config.Validator.
func (c DedupConfig) Validate() config.Errors {
	var es config.Errors
	es.Check(c.Window >= 0, "window", fmt.Sprintf("%s is negative", c.Window), "use a duration such as 2m, or 0 to turn deduplication off")
	es.Check(c.Window == 0 || c.MaxKeys >= 1000, "max_keys", fmt.Sprintf("%d is too small to deduplicate anything", c.MaxKeys), "use at least 1000 (default 4000000)")
	return es
}

// maxSeries bounds the series table (every series holds a key, so MaxKeys bounds it too); past it
// (hostile or broken ids) the window shortens, as for MaxKeys.
const maxSeries = 1 << 21

// Inserting a timestamp into the middle of a generation moves the keys after it; past this many the
// key goes to the generation's overflow set instead, so a series fed in random order costs O(1) per
// key, not O(keys).
const maxShift = 256

type seriesKey struct{ sensor, metric string }

type dedupKey struct {
	series uint32
	ts     int64
}

// genKeys is one generation of one series' timestamps: sorted offsets from base (4 bytes a key),
// plus, counted in nover, keys that did not fit (a timestamp more than ~35 minutes from the first
// one of the generation, or one that would have moved too many keys) kept in the Dedup's overflow
// set of that generation.
type genKeys struct {
	base  int64
	offs  []uint32 // ascending, distinct
	nover int32
}

const halfRange = 1 << 31

// offset returns ts as an offset from g.base, and whether it fits in 32 bits. The arithmetic wraps,
// so equal offsets always mean equal timestamps.
func (g *genKeys) offset(ts int64) (uint32, bool) {
	d := uint64(ts) - uint64(g.base)
	return uint32(d), d < 1<<32
}

// has reports whether ts is among g's offsets (the overflow set is the caller's).
func (g *genKeys) has(ts int64) bool {
	n := len(g.offs)
	if n == 0 {
		return false
	}
	o, ok := g.offset(ts)
	if !ok || o > g.offs[n-1] || o < g.offs[0] {
		return false
	}
	if o == g.offs[n-1] {
		return true
	}
	_, found := slices.BinarySearch(g.offs, o)
	return found
}

// add inserts ts (not present) and reports false when it belongs in the overflow set instead.
func (g *genKeys) add(ts int64) bool {
	if len(g.offs) == 0 {
		g.base = ts - halfRange
	}
	o, ok := g.offset(ts)
	if !ok {
		return false
	}
	n := len(g.offs)
	if n == 0 || o > g.offs[n-1] {
		g.offs = append(g.offs, o)
		return true
	}
	i, _ := slices.BinarySearch(g.offs, o)
	if n-i > maxShift {
		return false
	}
	g.offs = slices.Insert(g.offs, i, o)
	return true
}

func (g *genKeys) keys() int { return len(g.offs) + int(g.nover) }

// series is the window of one (sensor_id, metric): its current and previous generation, and the
// decoder's lake.Series its last reading used (see SeenSeries).
type series struct {
	cur, prev genKeys
	last      *lake.Series
}

// Dedup is an exact set of recently seen (sensor_id, metric, ts) keys, kept in two generations: the
// current one takes new keys; every Window/2 (or when it holds MaxKeys/2 keys) it becomes the previous
// one and the old previous one is dropped. A key is therefore remembered for between Window/2 and
// Window after it was last seen. Used by one goroutine.
//
// Layout, chosen by measurement (BenchmarkDedupSeen): one map lookup turns (sensor_id, metric) into
// a series number; each series keeps its timestamps per generation as a sorted slice of 32-bit
// offsets. Readings of a series arrive nearly in time order, so a new key is usually compared with
// the last one and appended, and the memory touched per reading is the series' entry and the tail of
// its slice, not a random slot of a table of millions. A generation's slices are reused by the
// next-but-one generation. A series with no key left is dropped when the generations rotate, so the
// series table never holds more series than keys.
//
// Memory: 4 bytes a key plus slice slack, plus about 130 bytes per series (map entry, series entry,
// slice headers). Measured by BenchmarkDedupSeen (heap per key when the window holds the most):
// 5.5 bytes a key for 10,000 sensors at 1 Hz (1.2M keys, 2 minutes), 10 bytes a key for 100,000
// sensors at 1 Hz (max_keys 4M caps the window at ~40 s: 39 keys a series); the two-map
// implementation it replaced took 47 and 59. Seen costs 58 and 123 ns there (534 and 727 before).
type Dedup struct {
	cfg     DedupConfig
	ids     map[seriesKey]uint32
	series  []series // by id
	free    []uint32 // ids of dropped series, for reuse
	over    [2]map[dedupKey]struct{}
	cur     int // index of the current generation's overflow set in over
	curKeys int // keys added to the current generation
	keys    int // keys held, both generations
	rotated time.Time
	now     func() time.Time
}

// NewDedup returns an empty window.
func NewDedup(cfg DedupConfig) *Dedup {
	d := &Dedup{cfg: cfg, ids: map[seriesKey]uint32{}, now: time.Now}
	d.over[0], d.over[1] = map[dedupKey]struct{}{}, map[dedupKey]struct{}{}
	d.rotated = d.now()
	return d
}

// Seen reports whether the key was seen within the window, and remembers it.
func (d *Dedup) Seen(sensor, metric string, ts int64) bool {
	dup, _ := d.SeenSeries(sensor, metric, ts)
	return dup
}

// SeenSeries is Seen, and also returns where the caller may keep the lake.Series of this (sensor_id,
// metric) for its next reading: the same lookup serves both. The slot is valid until the next call,
// nil when deduplication is off, and empty again once the series leaves the window.
func (d *Dedup) SeenSeries(sensor, metric string, ts int64) (bool, **lake.Series) {
	if d.cfg.Window <= 0 {
		return false, nil
	}
	sk := seriesKey{sensor, metric}
	id, ok := d.ids[sk]
	if !ok {
		if len(d.ids) >= maxSeries {
			d.rotate()
			if len(d.ids) >= maxSeries {
				d.rotate()
			}
		}
		id = d.newSeries()
		d.ids[sk] = id
	}
	s := &d.series[id]
	if s.cur.has(ts) || (s.cur.nover > 0 && d.inOverflow(d.cur, id, ts)) {
		return true, &s.last
	}
	dup := s.prev.has(ts) || (s.prev.nover > 0 && d.inOverflow(1-d.cur, id, ts))
	// A key seen again in the previous generation is copied into the current one, so it lives for
	// another generation.
	if !s.cur.add(ts) {
		d.over[d.cur][dedupKey{id, ts}] = struct{}{}
		s.cur.nover++
	}
	d.keys++
	d.curKeys++
	if d.curKeys >= d.cfg.MaxKeys/2 {
		d.rotate()
		s = &d.series[d.ids[sk]] // kept (it holds a key), but compact may have renumbered it
	}
	return dup, &s.last
}

func (d *Dedup) inOverflow(gen int, id uint32, ts int64) bool {
	_, ok := d.over[gen][dedupKey{id, ts}]
	return ok
}

func (d *Dedup) newSeries() uint32 {
	if n := len(d.free); n > 0 {
		id := d.free[n-1]
		d.free = d.free[:n-1]
		return id
	}
	d.series = append(d.series, series{})
	return uint32(len(d.series) - 1)
}

// Tick rotates generations when half the window has passed; call it now and then.
func (d *Dedup) Tick() {
	if d.cfg.Window > 0 && d.now().Sub(d.rotated) >= d.cfg.Window/2 {
		d.rotate()
	}
}

// rotate makes the current generation the previous one, drops the old previous one, and drops the
// series left with no key. It costs one pass over the series, which hold at least a key each, so at
// most MaxKeys/2 rotations' worth of Seen calls pay for it.
func (d *Dedup) rotate() {
	for sk, id := range d.ids {
		s := &d.series[id]
		d.keys -= s.prev.keys()
		old := s.prev.offs
		s.prev = s.cur
		if cap(old) > 4*len(s.prev.offs)+16 {
			old = nil // a burst grew it far past what the series now needs
		}
		s.cur = genKeys{offs: old[:0]}
		if s.prev.keys() == 0 {
			delete(d.ids, sk)
			s.prev.offs = nil // let a dropped series' memory go
			s.cur.offs = nil
			s.last = nil
			d.free = append(d.free, id)
		}
	}
	d.cur = 1 - d.cur
	clear(d.over[d.cur])
	d.curKeys = 0
	d.rotated = d.now()
	if len(d.free) > 1024 && len(d.free) > len(d.series)/2 {
		d.compact()
	}
}

// compact renumbers the series densely after many were dropped, so the series slice shrinks.
func (d *Dedup) compact() {
	next := make([]series, 0, len(d.ids))
	remap := make(map[uint32]uint32, len(d.ids))
	for sk, id := range d.ids {
		remap[id] = uint32(len(next))
		d.ids[sk] = uint32(len(next))
		next = append(next, d.series[id])
	}
	for g := range d.over {
		if len(d.over[g]) == 0 {
			continue
		}
		m := make(map[dedupKey]struct{}, len(d.over[g]))
		for k := range d.over[g] {
			m[dedupKey{remap[k.series], k.ts}] = struct{}{}
		}
		d.over[g] = m
	}
	d.series, d.free = next, nil
}

// Len returns how many keys are remembered.
func (d *Dedup) Len() int { return d.keys }

// Series returns how many (sensor_id, metric) pairs have keys remembered.
func (d *Dedup) Series() int { return len(d.ids) }

// Reset forgets everything.
func (d *Dedup) Reset() {
	clear(d.ids)
	d.series, d.free = nil, nil
	clear(d.over[0])
	clear(d.over[1])
	d.keys, d.curKeys = 0, 0
	d.rotated = d.now()
}
