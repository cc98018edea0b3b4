package pipeline

import (
	"time"

	"github.com/sluice-project/sluice/internal/lake"
)

const microsPerMinute = int64(time.Minute / time.Microsecond)

// rollupKey is one (sensor_id, metric, minute).
type rollupKey struct {
	sensor, metric string
	minute         int64
}

// Rollup1m aggregates the rows for which keep returns true (nil: all) into one lake.Reading1mRow per
// (sensor_id, metric, UTC minute of ts), in the order each key was first met. Rows may come in any
// order; ties on ts keep the first row met as first and the last as last.
func Rollup1m(rows []lake.ReadingRow, keep func(*lake.ReadingRow) bool) []lake.Reading1mRow {
	var out []lake.Reading1mRow
	idx := make(map[rollupKey]int32)
	var prev rollupKey
	at := int32(-1)
	for i := range rows {
		r := &rows[i]
		if keep != nil && !keep(r) {
			continue
		}
		k := rollupKey{sensor: r.SensorID, metric: r.Metric, minute: r.TS - floorMod(r.TS, microsPerMinute)}
		// Rows of one sensor mostly come together (the lake writer's order, or a payload of many
		// readings): skip the map for a run of one key.
		if at < 0 || k != prev {
			j, ok := idx[k]
			if !ok {
				j = int32(len(out))
				idx[k] = j
				out = append(out, lake.Reading1mRow{
					SensorID: r.SensorID, Metric: r.Metric, Minute: k.minute,
					Min: r.Value, Max: r.Value, FirstTS: r.TS, First: r.Value, LastTS: r.TS, Last: r.Value,
				})
			}
			prev, at = k, j
		}
		a := &out[at]
		a.Count++
		a.Sum += r.Value
		a.Min = min(a.Min, r.Value)
		a.Max = max(a.Max, r.Value)
		if r.TS < a.FirstTS {
			a.FirstTS, a.First = r.TS, r.Value
		}
		if r.TS >= a.LastTS {
			a.LastTS, a.Last = r.TS, r.Value
		}
	}
	return out
}

// floorMod is a mod b in [0, b) for b > 0, also for negative a (times before 1970).
func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
