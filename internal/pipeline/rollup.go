package pipeline

import (
	"time"

	"github.com/sluice-project/sluice/internal/lake"
)

const microsPerMinute = int64(time.Minute / time.Microsecond)

// rollupKey is one minute of one series (seriesKey: see dedup.go).
type rollupKey struct {
	seriesKey
	minute int64
}

// Rollup1m aggregates the rows for which keep returns true (nil: all) into one lake.Reading1mRow per
// (sensor_id, metric, UTC minute of ts), in the order each key was first met. Rows may come in any
// order; ties on ts keep the first row met as first and the last as last.
func Rollup1m(rows []lake.Reading, keep func(*lake.Reading) bool) []lake.Reading1mRow {
	var out []lake.Reading1mRow
	// A series' rows mostly come in time order, so its row is usually the one of its previous row:
	// current maps each interned Series to that (a small map keyed by a pointer, hot in cache),
	// minutes each (sensor, metric, minute) to its row, which Series differing in unit or flags
	// share.
	current := make(map[*lake.Series]int32)
	minutes := make(map[rollupKey]int32)
	for i := range rows {
		r := &rows[i]
		if keep != nil && !keep(r) {
			continue
		}
		minute := r.TS - floorMod(r.TS, microsPerMinute)
		j, ok := current[r.Series]
		if !ok || out[j].Minute != minute {
			k := rollupKey{seriesKey{r.Series.SensorID, r.Series.Metric}, minute}
			if j, ok = minutes[k]; !ok {
				j = int32(len(out))
				minutes[k] = j
				out = append(out, lake.Reading1mRow{
					SensorID: r.Series.SensorID, Metric: r.Series.Metric, Minute: minute,
					Min: r.Value, Max: r.Value, FirstTS: r.TS, First: r.Value, LastTS: r.TS, Last: r.Value,
				})
			}
			current[r.Series] = j
		}
		a := &out[j]
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
