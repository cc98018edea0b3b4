package query_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/app"
	"github.com/sluice-project/sluice/internal/simulate"
)

// BenchmarkIngestUnderQueries runs sluice (embedded broker, WAL, archiver, decoder, SQL engine) and
// publishes QoS 1 messages from 8 connections (1,000 simulated sensors) as fast as they are
// acknowledged, for 8 segments of 5 s that alternate: alone, then while 8 clients query over HTTP
// without pause (a full-scan aggregate over readings), and so on. It reports the rate of messages
// made durable in each kind of segment, their ratio (target ≥ 0.9: ingest keeps its pace;
// query.execution_share is what holds the queries back) and the queries answered. Alternating
// segments of one run compare like with like on a machine whose speed drifts by ±20% between runs.
// Run with -benchtime=1x; SLUICE_BENCH_EXECUTION_SHARE=1 measures queries that are not held back,
// SLUICE_BENCH_NICE sets query.nice.
func BenchmarkIngestUnderQueries(b *testing.B) {
	for range b.N {
		alone, loaded, queries := ingestRun(b, 8, 5*time.Second)
		b.ReportMetric(alone, "alone-msg/s")
		b.ReportMetric(loaded, "queried-msg/s")
		b.ReportMetric(loaded/alone, "ratio")
		b.ReportMetric(float64(queries), "queries")
	}
}

func ingestRun(b *testing.B, segments int, seg time.Duration) (alone, loaded float64, queries int64) {
	cfg := app.DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Broker.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Query.PGWire.Listen = ""
	cfg.Logging.Level = "error"
	for name, dst := range map[string]any{
		"SLUICE_BENCH_EXECUTION_SHARE": &cfg.Query.ExecutionShare, // 1: queries not held back, for comparison
		"SLUICE_BENCH_NICE":            &cfg.Query.Nice,
	} {
		if v := os.Getenv(name); v != "" {
			if _, err := fmt.Sscan(v, dst); err != nil {
				b.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	a := app.New(cfg, app.Options{}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	select {
	case <-a.Ready():
	case err := <-done:
		b.Fatal(err)
	}
	base := "http://" + a.HTTPAddr().String()
	post := func(ctx context.Context, q string) error {
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/query", strings.NewReader(q))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/sql")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	}
	for deadline := time.Now().Add(30 * time.Second); post(context.Background(), "SELECT 1") != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("SQL never became ready")
		}
	}
	// durable reads sluice_wal_appended_records_total from /metrics.
	durable := func() float64 {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "sluice_wal_appended_records_total "); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err == nil {
					return f
				}
			}
		}
		b.Fatal("no sluice_wal_appended_records_total in /metrics")
		return 0
	}
	sim := simulate.DefaultConfig()
	sim.Broker = "mqtt://" + a.MQTTAddr().String()
	sim.Fleet = 1000
	sim.Rate = 1_000_000
	sim.Connections = 8
	sim.QoS = 1
	// Warm-up: data for the queries to read, and a steady state.
	sim.Duration = 3 * time.Second
	if _, err := simulate.Run(context.Background(), sim, nil); err != nil {
		b.Fatal(err)
	}
	sim.Duration = time.Duration(segments)*seg + 2*time.Second
	sim.Seed = 2
	simDone := make(chan error, 1)
	go func() {
		_, err := simulate.Run(context.Background(), sim, nil)
		simDone <- err
	}()
	time.Sleep(time.Second) // connected and publishing
	var aloneN, loadedN float64
	var aloneT, loadedT time.Duration
	var answered atomic.Int64
	for i := range segments {
		qctx, stopQueries := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		if i%2 == 1 {
			for range 8 {
				wg.Go(func() {
					for qctx.Err() == nil {
						if err := post(qctx, "SELECT sensor_id, avg(value), max(ts), count(*) FROM readings GROUP BY sensor_id"); err == nil {
							answered.Add(1)
						}
					}
				})
			}
		}
		n0, t0 := durable(), time.Now()
		time.Sleep(seg)
		n, d := durable()-n0, time.Since(t0)
		stopQueries()
		wg.Wait()
		if i%2 == 1 {
			loadedN, loadedT = loadedN+n, loadedT+d
		} else {
			aloneN, aloneT = aloneN+n, aloneT+d
		}
	}
	if err := <-simDone; err != nil {
		b.Fatal(err)
	}
	return aloneN / aloneT.Seconds(), loadedN / loadedT.Seconds(), answered.Load()
}
