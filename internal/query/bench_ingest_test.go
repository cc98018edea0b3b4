package query_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
// acknowledged for 10 s, once alone and once while 8 clients query over HTTP without pause (a
// full-scan aggregate over readings). Reports acknowledged msg/s and the queries answered. Run with
// -benchtime=1x.
func BenchmarkIngestUnderQueries(b *testing.B) {
	for _, clients := range []int{0, 8} {
		b.Run(fmt.Sprintf("query clients=%d", clients), func(b *testing.B) {
			for range b.N {
				rate, queries := ingestRun(b, clients, 10*time.Second)
				b.ReportMetric(rate, "msg/s")
				b.ReportMetric(float64(queries), "queries")
			}
		})
	}
}

func ingestRun(b *testing.B, clients int, dur time.Duration) (float64, int64) {
	cfg := app.DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Broker.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Query.PGWire.Listen = ""
	cfg.Logging.Level = "error"
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
	url := "http://" + a.HTTPAddr().String() + "/api/v1/query"
	post := func(q string) error {
		resp, err := http.Post(url, "application/sql", strings.NewReader(q))
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
	for deadline := time.Now().Add(30 * time.Second); post("SELECT 1") != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("SQL never became ready")
		}
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
	var queries atomic.Int64
	qctx, stopQueries := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for qctx.Err() == nil {
				if err := post("SELECT sensor_id, avg(value), max(ts), count(*) FROM readings GROUP BY sensor_id"); err == nil {
					queries.Add(1)
				}
			}
		})
	}
	sim.Duration = dur
	sim.Seed = 2
	stats, err := simulate.Run(context.Background(), sim, nil)
	stopQueries()
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	return stats.Rate(), queries.Load()
}
