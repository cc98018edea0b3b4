package query

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/lake"
	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/wal"
	"github.com/sluice-project/sluice/internal/pipeline"
	"github.com/sluice-project/sluice/internal/sensor"
)

// BenchmarkFreshness measures how long after sluice received a reading SQL can see it, at 50,000
// readings/s for 10 s: envelopes are appended to the WAL (group-committed, fsynced) stamped with
// their receive time, the decoder stage reads and decodes them and hands them to the engine as hot
// rows, and the lake commits every 2 s meanwhile. A reading is visible once the DuckDB transaction
// holding it committed: every query started after that sees it. Two clients query count(*)
// throughout. Reports p50, p99 and max in ms. Run with -benchtime=1x (each iteration is 10 s).
func BenchmarkFreshness(b *testing.B) {
	const rate, dur = 50_000, 10 * time.Second
	for range b.N {
		lats := freshnessRun(b, rate, dur)
		slices.Sort(lats)
		pct := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))]) / 1e6 }
		b.ReportMetric(pct(0.5), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(lats[len(lats)-1])/1e6, "max-ms")
		b.ReportMetric(float64(len(lats)), "readings")
	}
}

func freshnessRun(b *testing.B, rate int, dur time.Duration) []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := b.TempDir()
	logger := slog.New(slog.DiscardHandler)
	wcfg := wal.DefaultConfig()
	wcfg.Dir = filepath.Join(dir, "wal")
	w, err := wal.Open(wcfg, logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	u := "file://" + filepath.ToSlash(filepath.Join(dir, "lake"))
	lk, err := lake.Open(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	defer lk.Close()
	lcfg := lake.DefaultConfig()
	lcfg.FlushInterval = 2 * time.Second
	dec, err := pipeline.NewDecoder(ctx, lk, lcfg, decode.DefaultConfig(), sensor.Empty(), pipeline.DefaultDedupConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	e := openEngine(b, u, DefaultConfig(), WithHotReadings(pipeline.DecoderAppID))
	var mu sync.Mutex
	lats := make([]time.Duration, 0, int(float64(rate)*dur.Seconds()))
	e.hot.observe = func(received int64, visible time.Time) {
		mu.Lock()
		lats = append(lats, visible.Sub(time.UnixMicro(received)))
		mu.Unlock()
	}
	dec.SetHot(e)
	r, err := pipeline.NewRunner(pipeline.DecoderName, w, dec, logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	runCtx, stopRun := context.WithCancel(ctx)
	wg.Go(func() { _ = r.Run(runCtx) })
	for range 2 { // dashboards
		wg.Go(func() {
			for runCtx.Err() == nil {
				_, _ = tryRows(e, "SELECT count(*) FROM readings")
			}
		})
	}

	total := int(float64(rate) * dur.Seconds())
	start := time.Now()
	sent := 0
	var buf []byte
	for sent < total {
		time.Sleep(time.Millisecond)
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		if due <= sent {
			continue
		}
		now := time.Now().UnixNano()
		entries := make([]slog2.Entry, 0, due-sent)
		for i := sent; i < due; i++ {
			ts := benchDay.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000000")
			payload := fmt.Sprintf(`{"sensor_id":"s-%d","timestamp":%q,"value":%d.5}`, i%1000, ts, i%97)
			env := envelope.Envelope{ReceivedAt: now, Source: envelope.SourceMQTT, QoS: 1, Topic: "sensors", Payload: []byte(payload)}
			buf = env.AppendBinary(buf[:0])
			entries = append(entries, slog2.Entry{Value: append([]byte(nil), buf...)})
		}
		w.AppendAsync(entries, func(error) {})
		sent = due
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(lats)
		mu.Unlock()
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopRun()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(lats) < total {
		b.Fatalf("only %d of %d readings became visible", len(lats), total)
	}
	return lats
}
