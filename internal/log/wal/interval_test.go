package wal

import (
	"context"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

// TestCommitInterval checks wal.commit_interval: appends arriving while the last group commit is
// younger than the interval wait for the rest of it and share one fdatasync; an append after a
// longer pause, and the first one, are committed at once; 0 commits without waiting.
func TestCommitInterval(t *testing.T) {
	const interval = 300 * time.Millisecond
	tests := []struct {
		name      string
		interval  time.Duration
		minWait   time.Duration // the burst's appends are durable no sooner than this after the first commit
		maxWait   time.Duration // …and no later
		maxCommit float64       // fdatasyncs of the first append and the burst
	}{
		{name: "interval", interval: interval, minWait: interval - 20*time.Millisecond, maxWait: 5 * interval, maxCommit: 2},
		{name: "off", interval: 0, minWait: 0, maxWait: interval - 100*time.Millisecond, maxCommit: 51},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir(), 1<<20)
			cfg.CommitInterval = tc.interval
			l := openT(t, cfg)
			defer l.Close()
			ctx := context.Background()

			start := time.Now()
			if err := l.Append(ctx, slog2.Entry{Value: val(0, 100)}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > interval-100*time.Millisecond {
				t.Fatalf("the first append took %v: it must not wait for the interval", d)
			}

			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for i := 1; i <= 50; i++ {
				wg.Add(1)
				l.AppendAsync([]slog2.Entry{{Value: val(i, 100)}}, func(err error) { errs <- err; wg.Done() })
			}
			wg.Wait()
			waited := time.Since(start)
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if waited < tc.minWait || waited > tc.maxWait {
				t.Fatalf("the burst was durable %v after the first commit, want %v to %v", waited, tc.minWait, tc.maxWait)
			}
			var m dto.Metric
			if err := l.m.recordsPerFsync.Write(&m); err != nil {
				t.Fatal(err)
			}
			if n := float64(m.GetHistogram().GetSampleCount()); n > tc.maxCommit {
				t.Fatalf("%v fdatasyncs for the first append and the burst, want at most %v", n, tc.maxCommit)
			}

			// After a pause longer than the interval, an append is committed at once.
			time.Sleep(interval + 50*time.Millisecond)
			start = time.Now()
			if err := l.Append(ctx, slog2.Entry{Value: val(51, 100)}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > interval-100*time.Millisecond {
				t.Fatalf("an append after a pause took %v: it must not wait for the interval", d)
			}
		})
	}
}
