package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/pipeline"
)

// The day benchmarks read one day of 1,000 sensors at 1 Hz: 86.4M readings, written once per test
// process with the lake writer, 1M rows per commit (the default lake.flush_rows), each commit's
// minutes to readings_1m/ as the decoder writes them. Set
// SLUICE_QUERY_BENCH_LAKE to a directory to keep the lake between runs (it is written there once).

const (
	benchSensors = 1000
	benchSeconds = 86_400
)

var benchDay = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

var (
	dayOnce sync.Once
	dayURL  string
	dayErr  error
)

func dayLake(b *testing.B) string {
	b.Helper()
	dayOnce.Do(func() { dayURL, dayErr = buildDayLake() })
	if dayErr != nil {
		b.Fatal(dayErr)
	}
	return dayURL
}

func buildDayLake() (string, error) {
	dir := os.Getenv("SLUICE_QUERY_BENCH_LAKE")
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-query-bench-")
		if err != nil {
			return "", err
		}
		dir = d
		benchCleanup = append(benchCleanup, func() { os.RemoveAll(d) })
	}
	u := "file://" + filepath.ToSlash(dir)
	if _, err := os.Stat(filepath.Join(dir, "complete.v2")); err == nil {
		return u, nil
	}
	ctx := context.Background()
	lk, err := lake.Open(ctx, u)
	if err != nil {
		return "", err
	}
	defer lk.Close()
	w, err := lake.NewWriter(ctx, lk, lake.ReadingsSpec(), lake.DefaultConfig())
	if err != nil {
		return "", err
	}
	mw, err := lake.NewWriter(ctx, lk, lake.Readings1mSpec(), lake.DefaultConfig())
	if err != nil {
		return "", err
	}
	commit := func(last int64) error {
		b := w.Seal()
		if _, err := mw.BatchOf(pipeline.Rollup1m(b.Rows(), nil)).Commit(ctx, "decoder-p0", last); err != nil {
			return err
		}
		_, err := b.Commit(ctx, "decoder-p0", last)
		return err
	}
	start := time.Now()
	ids := make([]*lake.Series, benchSensors)
	vals := make([]float64, benchSensors)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		ids[i] = &lake.Series{SensorID: fmt.Sprintf("sensor-%04d", i), Metric: "temperature", Unit: "C", Flags: []string{}}
		vals[i] = 20 + float64(i%10)
	}
	id := int64(0)
	for s := range benchSeconds {
		ts := benchDay.Add(time.Duration(s) * time.Second).UnixMicro()
		for i := range ids {
			vals[i] += float64(rng.IntN(21)-10) / 100
			w.Add(lake.Reading{Series: ids[i], TS: ts + int64(i)*997, Value: vals[i], ReceivedAt: ts + int64(i)*997 + 1500, IngestID: id})
			id++
		}
		if rows, _, _ := w.Buffered(); rows >= 1_000_000 {
			if err := commit(id - 1); err != nil {
				return "", err
			}
		}
	}
	if err := commit(id - 1); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "bench lake: %d readings written in %s to %s\n", id, time.Since(start).Round(time.Second), dir)
	return u, os.WriteFile(filepath.Join(dir, "complete.v2"), nil, 0o644)
}

var benchCleanup []func()

// drain reads every row of q and returns how many there were.
func drain(b *testing.B, e *Engine, q string) int {
	n := 0
	err := e.Query(context.Background(), Request{SQL: q}, func(r *Rows) error {
		row := make([]any, len(r.Columns()))
		for {
			if err := r.Next(row); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			n++
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// benchConfig measures the engine: DuckDB's workers at the default niceness 0 (at 19 any other
// process on the machine would come first), results not cut.
func benchConfig() Config {
	c := DefaultConfig()
	c.MaxRows = 0
	return c
}

// BenchmarkResampleDay: 1-minute mean, min, max and count of every sensor over the day (1.44M
// groups, all returned), and of one sensor (the README's query): from readings_1m (what the README
// advises) and, for comparison, computed from readings.
func BenchmarkResampleDay(b *testing.B) {
	u := dayLake(b)
	e := openEngine(b, u, benchConfig(), Static())
	b.Run("all sensors readings_1m", func(b *testing.B) {
		q := `SELECT sensor_id, minute, mean, min, max, count FROM readings_1m`
		for b.Loop() {
			if n := drain(b, e, q); n != benchSensors*benchSeconds/60 {
				b.Fatalf("%d rows, want %d", n, benchSensors*benchSeconds/60)
			}
		}
		b.ReportMetric(float64(benchSensors*benchSeconds)/b.Elapsed().Seconds()*float64(b.N), "readings/s")
	})
	b.Run("one sensor readings_1m", func(b *testing.B) {
		q := `SELECT minute, mean, min, max, count FROM readings_1m
WHERE sensor_id = 'sensor-0421' AND minute >= TIMESTAMPTZ '2026-11-24' AND minute < TIMESTAMPTZ '2026-11-25' ORDER BY minute`
		for b.Loop() {
			if n := drain(b, e, q); n != benchSeconds/60 {
				b.Fatalf("%d rows", n)
			}
		}
	})
	b.Run("all sensors", func(b *testing.B) {
		q := `SELECT sensor_id, time_bucket(INTERVAL 1 MINUTE, ts) AS minute, avg(value) AS mean, min(value) AS min, max(value) AS max, count(*) AS n
FROM readings GROUP BY ALL`
		for b.Loop() {
			if n := drain(b, e, q); n != benchSensors*benchSeconds/60 {
				b.Fatalf("%d rows, want %d", n, benchSensors*benchSeconds/60)
			}
		}
		b.ReportMetric(float64(benchSensors*benchSeconds)/b.Elapsed().Seconds()*float64(b.N), "readings/s")
	})
	b.Run("one sensor", func(b *testing.B) {
		q := `SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS minute, avg(value) AS mean, min(value) AS min, max(value) AS max, count(*) AS n
FROM readings WHERE sensor_id = 'sensor-0421' AND ts >= TIMESTAMPTZ '2026-11-24' AND ts < TIMESTAMPTZ '2026-11-25'
GROUP BY minute ORDER BY minute`
		for b.Loop() {
			if n := drain(b, e, q); n != benchSeconds/60 {
				b.Fatalf("%d rows", n)
			}
		}
	})
}

// BenchmarkLatestPerSensor: the newest value of every sensor, from the latest view (the index) and,
// for comparison, by scanning readings.
func BenchmarkLatestPerSensor(b *testing.B) {
	u := dayLake(b)
	e := openEngine(b, u, benchConfig())
	deadline := time.Now().Add(5 * time.Minute)
	for {
		e.refreshMu.Lock()
		left := len(e.unindexed)
		e.refreshMu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("latest index not built: %d files left", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Run("latest view", func(b *testing.B) {
		for b.Loop() {
			if n := drain(b, e, "SELECT sensor_id, metric, ts, value FROM latest"); n != benchSensors {
				b.Fatalf("%d rows", n)
			}
		}
	})
	b.Run("scan readings", func(b *testing.B) {
		for b.Loop() {
			if n := drain(b, e, "SELECT sensor_id, metric, max(ts), arg_max(value, ts) FROM readings GROUP BY ALL"); n != benchSensors {
				b.Fatalf("%d rows", n)
			}
		}
	})
}
