package pipeline

import (
	"fmt"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// DedupConfig bounds the duplicate-removal window of the decoder.
type DedupConfig struct {
	Window  time.Duration `yaml:"window" doc:"Readings with the same (sensor_id, metric, ts) that arrive within this long of each other are stored once. 0 turns deduplication off (not recommended: MQTT redelivers after reconnects)."`
	MaxKeys int           `yaml:"max_keys" doc:"Most keys remembered (about 28 bytes each); when reached the window shortens. Bounds memory at high rates."`
}

// DefaultDedupConfig remembers two minutes of keys, at most four million (~110 MiB).
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

// maxSeries bounds the series-id table; beyond it (hostile or broken ids) the window starts afresh.
const maxSeries = 1 << 21

type seriesKey struct{ sensor, metric string }

type dedupKey struct {
	series uint32
	ts     int64
}

// Dedup is an exact set of recently seen (sensor_id, metric, ts) keys, kept in two generations: the
// current one takes new keys; every Window/2 (or when it holds MaxKeys/2 keys) it becomes the previous
// one and the old previous one is dropped. A key is therefore remembered for between Window/2 and
// Window after it was last seen. Used by one goroutine.
type Dedup struct {
	cfg       DedupConfig
	series    map[seriesKey]uint32
	cur, prev map[dedupKey]struct{}
	rotated   time.Time
	now       func() time.Time
}

// NewDedup returns an empty window.
func NewDedup(cfg DedupConfig) *Dedup {
	d := &Dedup{cfg: cfg, series: map[seriesKey]uint32{}, now: time.Now}
	d.cur, d.prev = map[dedupKey]struct{}{}, map[dedupKey]struct{}{}
	d.rotated = d.now()
	return d
}

// Seen reports whether the key was seen within the window, and remembers it.
func (d *Dedup) Seen(sensor, metric string, ts int64) bool {
	if d.cfg.Window <= 0 {
		return false
	}
	sk := seriesKey{sensor, metric}
	id, ok := d.series[sk]
	if !ok {
		if len(d.series) >= maxSeries {
			d.Reset()
		}
		id = uint32(len(d.series))
		d.series[sk] = id
	}
	k := dedupKey{id, ts}
	if _, ok := d.cur[k]; ok {
		return true
	}
	if _, ok := d.prev[k]; ok {
		d.cur[k] = struct{}{} // seen again: keep it for another generation
		return true
	}
	d.cur[k] = struct{}{}
	if len(d.cur) >= d.cfg.MaxKeys/2 {
		d.rotate()
	}
	return false
}

// Tick rotates generations when half the window has passed; call it now and then.
func (d *Dedup) Tick() {
	if d.cfg.Window > 0 && d.now().Sub(d.rotated) >= d.cfg.Window/2 {
		d.rotate()
	}
}

func (d *Dedup) rotate() {
	d.prev = d.cur
	d.cur = make(map[dedupKey]struct{}, len(d.prev))
	d.rotated = d.now()
}

// Len returns how many keys are remembered.
func (d *Dedup) Len() int { return len(d.cur) + len(d.prev) }

// Reset forgets everything.
func (d *Dedup) Reset() {
	clear(d.series)
	d.cur, d.prev = map[dedupKey]struct{}{}, map[dedupKey]struct{}{}
	d.rotated = d.now()
}
