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

// TestCommitIntervalSynchronous checks that commit_interval holds back no queue of synchronous
// appends only (here 64 appenders, five Appends each: each appends again once committed), while a
// stream of asynchronous appends shares one fdatasync per interval.
func TestCommitIntervalSynchronous(t *testing.T) {
	const interval = 100 * time.Millisecond
	cfg := testConfig(t.TempDir(), 64<<20)
	cfg.CommitInterval = interval
	l := openT(t, cfg)
	defer l.Close()
	ctx := context.Background()
	fsyncs := func() uint64 {
		var m dto.Metric
		if err := l.m.recordsPerFsync.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}

	const appenders, rounds = 64, 5
	synchronous := func(when string) {
		t.Helper()
		start := time.Now()
		var wg sync.WaitGroup
		for g := range appenders {
			wg.Go(func() {
				for i := range rounds {
					if err := l.Append(ctx, slog2.Entry{Value: val(g*rounds+i, 100)}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if d := time.Since(start); d >= 2*interval {
			t.Fatalf("%s, %d synchronous appenders took %v for %d appends each: commit_interval (%v) held them back", when, appenders, d, rounds, interval)
		}
	}
	synchronous("first")

	// A stream: appends that do not wait, as fast as they come.
	before := fsyncs()
	const stream = 50_000
	var done sync.WaitGroup
	done.Add(stream)
	start := time.Now()
	for i := range stream {
		l.AppendAsync([]slog2.Entry{{Value: val(i, 100)}}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			done.Done()
		})
	}
	done.Wait()
	took := time.Since(start)
	if n, most := fsyncs()-before, uint64(took/interval)+3; n > most {
		t.Fatalf("a stream of %d appends over %v took %d fdatasyncs, want at most %d (one per %v)", stream, took, n, most, interval)
	}

	// Once the stream is committed, nothing of it is left counted as queued.
	synchronous("after the stream")
}

// TestLazyCommitInterval checks wal.lazy_commit_interval: lazy appends (AppendLazy) arriving while the
// last group commit is younger than the interval share one fdatasync after it; an append that is
// waited on (AppendAsync) cuts the wait short for the lazy ones queued before it; a lazy append after
// a pause, and the first one, are committed at once. (That done is called in append order, lazy or
// not, is logtest's AppendAsyncCallsDoneInOrder.)
func TestLazyCommitInterval(t *testing.T) {
	const interval = 400 * time.Millisecond
	cfg := testConfig(t.TempDir(), 1<<20)
	cfg.CommitInterval, cfg.LazyCommitInterval = 0, interval
	l := openT(t, cfg)
	defer l.Close()
	fsyncs := func() float64 {
		var m dto.Metric
		if err := l.m.recordsPerFsync.Write(&m); err != nil {
			t.Fatal(err)
		}
		return float64(m.GetHistogram().GetSampleCount())
	}
	appendAll := func(first, n int, lazy bool) *sync.WaitGroup {
		var wg sync.WaitGroup
		for i := first; i < first+n; i++ {
			wg.Add(1)
			done := func(err error) {
				if err != nil {
					t.Error(err)
				}
				wg.Done()
			}
			if lazy {
				l.AppendLazy([]slog2.Entry{{Value: val(i, 100)}}, done)
			} else {
				l.AppendAsync([]slog2.Entry{{Value: val(i, 100)}}, done)
			}
		}
		return &wg
	}

	start := time.Now()
	appendAll(0, 1, true).Wait()
	if d := time.Since(start); d > interval/2 {
		t.Fatalf("the first lazy append took %v: it must not wait for the interval", d)
	}
	appendAll(1, 50, true).Wait()
	if d := time.Since(start); d < interval-20*time.Millisecond || d > 4*interval {
		t.Fatalf("a burst of lazy appends was durable %v after the first commit, want about %v", d, interval)
	}
	if n := fsyncs(); n > 2 {
		t.Fatalf("%v fdatasyncs for the first lazy append and the burst, want at most 2", n)
	}

	// Lazy appends queued, then one waited on: it does not wait for the lazy interval, nor do they.
	start = time.Now()
	lazy := appendAll(51, 20, true)
	time.Sleep(20 * time.Millisecond)
	appendAll(71, 1, false).Wait()
	lazy.Wait()
	if d := time.Since(start); d > interval/2 {
		t.Fatalf("an append waited on, behind lazy ones, was durable after %v: it must cut the lazy wait short", d)
	}

	// After a pause longer than the interval, a lazy append is committed at once.
	time.Sleep(interval + 50*time.Millisecond)
	start = time.Now()
	appendAll(72, 1, true).Wait()
	if d := time.Since(start); d > interval/2 {
		t.Fatalf("a lazy append after a pause took %v: it must not wait for the interval", d)
	}
}
