package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/logtest"
)

const benchEntry = 160 // bytes: a typical encoded envelope

func benchLog(b *testing.B, fsync bool) *WAL {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.MaxSize = 0
	cfg.Fsync = fsync
	l, err := Open(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// reportCommits reports records/s and records per fsync (group commit size).
func reportCommits(b *testing.B, l *WAL, records int) {
	var m dto.Metric
	if err := l.m.recordsPerFsync.Write(&m); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	if n := m.GetHistogram().GetSampleCount(); n > 0 {
		b.ReportMetric(float64(records)/float64(n), "records/fsync")
	}
}

// BenchmarkAppend: concurrent appenders, one 160-byte entry per Append (one op = one record), every
// Append waiting for its group commit, as MQTT QoS 1 connections do.
func BenchmarkAppend(b *testing.B) {
	for _, g := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			l := benchLog(b, true)
			defer l.Close()
			value := make([]byte, benchEntry)
			b.SetBytes(benchEntry)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range g {
				n := b.N / g
				if w < b.N%g {
					n++
				}
				wg.Go(func() {
					for range n {
						if err := l.Append(context.Background(), slog2.Entry{Value: value}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			reportCommits(b, l, b.N)
		})
	}
}

// BenchmarkAppendBatch: one goroutine appending batches of 256 entries (one op = one batch), waiting
// for each (sync), or keeping a window of batches in flight with AppendAsync (async), as a source that
// acknowledges from the done callback does; nofsync shows the CPU-bound ceiling.
func BenchmarkAppendBatch(b *testing.B) {
	const batch = 256
	entries := make([]slog2.Entry, batch)
	for i := range entries {
		entries[i] = slog2.Entry{Value: make([]byte, benchEntry)}
	}
	b.Run("sync", func(b *testing.B) {
		l := benchLog(b, true)
		defer l.Close()
		b.SetBytes(batch * benchEntry)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := l.Append(context.Background(), entries...); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportCommits(b, l, b.N*batch)
	})
	for _, tc := range []struct {
		name   string
		window int // batches in flight
		fsync  bool
	}{{"async-window=16", 16, true}, {"async-window=64", 64, true}, {"async-window=64-nofsync", 64, false}} {
		b.Run(tc.name, func(b *testing.B) {
			l := benchLog(b, tc.fsync)
			defer l.Close()
			window := make(chan struct{}, tc.window)
			var wg sync.WaitGroup
			b.SetBytes(batch * benchEntry)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				window <- struct{}{}
				wg.Add(1)
				l.AppendAsync(entries, func(err error) {
					if err != nil {
						b.Error(err)
					}
					<-window
					wg.Done()
				})
			}
			wg.Wait()
			b.StopTimer()
			reportCommits(b, l, b.N*batch)
		})
	}
}

// BenchmarkFetch: one consumer reading records of 160 bytes already in the log (one op = one record).
func BenchmarkFetch(b *testing.B) {
	l := benchLog(b, false)
	defer l.Close()
	ctx := context.Background()
	entries := make([]slog2.Entry, 4096)
	for i := range entries {
		entries[i] = slog2.Entry{Value: make([]byte, benchEntry)}
	}
	for n := 0; n < b.N; n += len(entries) {
		if err := l.Append(ctx, entries[:min(len(entries), b.N-n)]...); err != nil {
			b.Fatal(err)
		}
	}
	c, err := l.Consume("bench", &logtest.Handler{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b.SetBytes(benchEntry)
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; {
		recs, err := c.Fetch(fctx)
		if err != nil {
			b.Fatal(err)
		}
		got += len(recs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
