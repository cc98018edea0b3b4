package query

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/pipeline"
	"github.com/sluice-project/sluice/internal/testkit"
)

// The ready-made BI queries, exactly as the README shows them (TestREADMEShowsBIQueries).
const (
	biLatest = `SELECT sensor_id, metric, ts, value, unit FROM latest ORDER BY sensor_id, metric;`

	biMinuteMeans = `SELECT minute, mean, min, max, count
FROM readings_1m
WHERE sensor_id = 'Sensor 1' AND minute >= TIMESTAMPTZ '2026-11-24' AND minute < TIMESTAMPTZ '2026-11-25'
ORDER BY minute;`

	biGaps = `SELECT sensor_id, metric, prev_ts AS gap_from, ts AS gap_to, ts - prev_ts AS gap
FROM (SELECT sensor_id, metric, ts, lag(ts) OVER (PARTITION BY sensor_id, metric ORDER BY ts) AS prev_ts
      FROM readings WHERE ts >= TIMESTAMPTZ '2026-11-24' AND ts < TIMESTAMPTZ '2026-11-25')
JOIN sensors USING (sensor_id)
WHERE ts - prev_ts > 3 * coalesce(expected_interval, INTERVAL 10 SECONDS)
ORDER BY gap DESC;`

	biOutOfRange = `SELECT r.sensor_id, r.ts, r.value, s.min, s.max, s.unit
FROM readings r JOIN sensors s USING (sensor_id)
WHERE r.value < s.min OR r.value > s.max
ORDER BY r.ts;`
)

var biQueries = map[string]string{"latest": biLatest, "minute means": biMinuteMeans, "gaps": biGaps, "out of range": biOutOfRange}

// biLake builds the BI fixture: three registered sensors (0–45 °C, every 10 s) and one unknown, one
// hour of readings each on 2026-11-24 from 10:00 UTC, "Sensor 2" silent from 10:20:00 to 10:24:50,
// "Sensor 3" out of range twice; "Sensor 9" (unknown) sends three humidity readings at 10:00. The last ten minutes are hot rows, the rest committed.
func biLake(t *testing.T, now time.Time) *Engine {
	lk, u := testkit.TempLake(t)
	reg := `{"sensors": [
  {"id": "Sensor 1", "type": "temperature", "unit": "C", "range": {"min": 0, "max": 45}, "interval": "10s"},
  {"id": "Sensor 2", "type": "temperature", "unit": "C", "range": {"min": 0, "max": 45}, "interval": "10s"},
  {"id": "Sensor 3", "type": "temperature", "unit": "C", "range": {"min": 0, "max": 45}, "interval": "10s"}]}`
	testkit.NewCommitter(t, lk, lake.SensorsSpec()).Commit(t, []lake.SensorsRow{{Digest: "d1", LoadedAt: now.UnixMicro(), Origin: "test", SensorCount: 3, Raw: []byte(reg)}}, "registry-d1", 0)
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var file []lake.ReadingRow
	id := int64(0)
	for s := 0; s < 360; s++ {
		ts := start.Add(time.Duration(s) * 10 * time.Second)
		for i, name := range []string{"Sensor 1", "Sensor 2", "Sensor 3"} {
			if name == "Sensor 2" && !ts.Before(start.Add(20*time.Minute)) && ts.Before(start.Add(25*time.Minute)) {
				continue
			}
			v := 20 + float64(i+1) + float64(s/6)/100
			if name == "Sensor 3" && ts.Equal(start.Add(30*time.Minute)) {
				v = 50
			}
			if name == "Sensor 3" && ts.Equal(start.Add(40*time.Minute)) {
				v = -5
			}
			file = append(file, lake.ReadingRow{SensorID: name, Metric: "temperature", TS: ts.UnixMicro(), Value: v, Unit: "C",
				ReceivedAt: ts.UnixMicro() + 500, IngestID: id, Flags: []string{}})
			id++
		}
	}
	for s := 0; s < 3; s++ {
		ts := start.Add(time.Duration(s) * 10 * time.Second)
		file = append(file, lake.ReadingRow{SensorID: "Sensor 9", Metric: "humidity", TS: ts.UnixMicro(), Value: 55, Unit: "%",
			ReceivedAt: ts.UnixMicro(), IngestID: id, Flags: []string{"unknown_sensor"}})
		id++
	}
	rows := lake.ReadingsOf(file)
	// Committed: everything before 10:50; hot: the rest.
	cut := 0
	for cut < len(rows) && rows[cut].TS < start.Add(50*time.Minute).UnixMicro() {
		cut++
	}
	// Each commit's minutes go to readings_1m/ first, as the decoder does; cut/2 falls inside a minute.
	rc := testkit.NewCommitter(t, lk, lake.ReadingsSpec())
	mc := testkit.NewCommitter(t, lk, lake.Readings1mSpec())
	for _, part := range [][]lake.Reading{rows[:cut/2], rows[cut/2 : cut]} {
		last := part[len(part)-1].IngestID
		mc.Commit(t, pipeline.Rollup1m(part, nil), "decoder-p0", last)
		rc.Commit(t, part, "decoder-p0", last)
	}
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	e.AddReadings(0, rows[cut:])
	testkit.Eventually(t, 5*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == int64(len(rows)) }, "hot rows not visible")
	testkit.Eventually(t, 5*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM sensors WHERE registered") == 3 }, "registry not loaded")
	return e
}

func TestBIQueries(t *testing.T) {
	e := biLake(t, time.Now())
	t.Run("latest", func(t *testing.T) {
		rows := rowsOf(t, e, biLatest)
		want := [][]any{
			{"Sensor 1", "temperature", "2026-11-24T10:59:50Z", 21.59, "C"},
			{"Sensor 2", "temperature", "2026-11-24T10:59:50Z", 22.59, "C"},
			{"Sensor 3", "temperature", "2026-11-24T10:59:50Z", 23.59, "C"},
			{"Sensor 9", "humidity", "2026-11-24T10:00:20Z", 55.0, "%"},
		}
		if len(rows) != len(want) {
			t.Fatalf("got %d rows, want %d: %v", len(rows), len(want), rows)
		}
		for i, w := range want {
			got := []any{rows[i][0], rows[i][1], rows[i][2].(time.Time).Format(time.RFC3339), rows[i][3], rows[i][4]}
			for j := range w {
				if got[j] != w[j] {
					t.Fatalf("row %d = %v, want %v", i, got, w)
				}
			}
		}
	})
	t.Run("minute means", func(t *testing.T) {
		rows := rowsOf(t, e, biMinuteMeans)
		if len(rows) != 60 {
			t.Fatalf("got %d minutes, want 60", len(rows))
		}
		for m, r := range rows {
			want := 21 + float64(m)/100
			minute := r[0].(time.Time)
			if !minute.Equal(time.Date(2026, 11, 24, 10, m, 0, 0, time.UTC)) || math.Abs(r[1].(float64)-want) > 1e-9 || r[2] != want || r[3] != want || r[4] != int64(6) {
				t.Fatalf("minute %d = %v, want mean=min=max=%v, n=6", m, r, want)
			}
		}
	})
	t.Run("gaps", func(t *testing.T) {
		rows := rowsOf(t, e, biGaps)
		if len(rows) != 1 {
			t.Fatalf("got %v, want exactly Sensor 2's gap", rows)
		}
		r := rows[0]
		if r[0] != "Sensor 2" || r[2].(time.Time).Format(time.TimeOnly) != "10:19:50" || r[3].(time.Time).Format(time.TimeOnly) != "10:25:00" || r[4] != "00:05:10" {
			t.Fatalf("gap = %v, want Sensor 2 from 10:19:50 to 10:25:00 (00:05:10)", r)
		}
	})
	t.Run("out of range", func(t *testing.T) {
		rows := rowsOf(t, e, biOutOfRange)
		if len(rows) != 2 || rows[0][0] != "Sensor 3" || rows[0][2] != 50.0 || rows[1][2] != -5.0 || rows[0][3] != 0.0 || rows[0][4] != 45.0 {
			t.Fatalf("got %v, want Sensor 3's 50 and -5 against 0..45", rows)
		}
	})
	t.Run("sensors", func(t *testing.T) {
		rows := rowsOf(t, e, "SELECT sensor_id, registered, last_seen, metrics, expected_interval FROM sensors ORDER BY sensor_id")
		if len(rows) != 4 || rows[3][0] != "Sensor 9" || rows[3][1] != false || rows[0][1] != true || rows[0][4] != "00:00:10" {
			t.Fatalf("sensors = %v", rows)
		}
		if ls := rows[1][2].(time.Time).Format(time.RFC3339); ls != "2026-11-24T10:59:50Z" {
			t.Fatalf("Sensor 2 last_seen = %s", ls)
		}
	})
}

// TestREADMEShowsBIQueries keeps the README's ready-made queries identical to the tested ones.
func TestREADMEShowsBIQueries(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	space := regexp.MustCompile(`\s+`)
	readme := space.ReplaceAllString(string(data), " ")
	for name, q := range biQueries {
		if !strings.Contains(readme, space.ReplaceAllString(q, " ")) {
			t.Errorf("README.md does not show the %s query as tested:\n%s", name, q)
		}
	}
	_ = context.Background
}
