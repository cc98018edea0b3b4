package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

// Stage turns log records into output and commits that output with the offsets it covers.
// All methods are called from the runner's goroutine.
type Stage interface {
	// Resume returns the next offset to read on partition p: the last offset its committed output
	// covers, plus one (0 when nothing was committed).
	Resume(ctx context.Context, p int32) (int64, error)
	// Process buffers the output of recs. Values are only valid during the call: copy what is kept.
	Process(ctx context.Context, recs []slog2.Record) error
	// Due reports whether buffered output should be committed now (rows, bytes or age).
	Due(now time.Time) bool
	// Commit makes everything processed on partition p, up to and including offset last, durable
	// and visible. It is called with the same last again after a failure.
	Commit(ctx context.Context, p int32, last int64) error
}

// Runner runs one stage as one consumer group of a log.
type Runner struct {
	name   string
	log    slog2.Log
	stage  Stage
	logger *slog.Logger
	m      *runnerMetrics

	// Tick bounds how long Due goes unchecked while no records arrive.
	Tick time.Duration
	// DrainIdle is how long a fetch must come back empty before a draining runner stops.
	DrainIdle time.Duration

	consumer  slog2.Consumer
	processed map[int32]int64 // last offset processed, per partition
	committed map[int32]int64 // last offset committed, per partition
	drain     chan struct{}
	caught    chan struct{}
}

// NewRunner registers the consumer group name on l at once (so the log keeps what the stage has not
// committed from this moment) and returns a runner ready to Run.
func NewRunner(name string, l slog2.Log, stage Stage, logger *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	r := &Runner{
		name: name, log: l, stage: stage, logger: logger.With("stage", name),
		Tick: 200 * time.Millisecond, DrainIdle: 100 * time.Millisecond,
		processed: map[int32]int64{}, committed: map[int32]int64{},
		drain: make(chan struct{}), caught: make(chan struct{}),
		m: newRunnerMetrics(reg, name),
	}
	c, err := l.Consume(name, (*handler)(r))
	if err != nil {
		return nil, fmt.Errorf("stage %s: consume: %w", name, err)
	}
	r.consumer = c
	return r, nil
}

// Drain asks Run to read until the log has nothing more for it, commit, and return nil. Call it after
// the sources have stopped appending.
func (r *Runner) Drain() {
	select {
	case <-r.drain:
	default:
		close(r.drain)
	}
}

// Run fetches, processes and commits until ctx is done (it then commits what it processed and returns
// ctx's error) or, after Drain, until the log is read to its end (it then commits and returns nil).
func (r *Runner) Run(ctx context.Context) (err error) {
	defer func() {
		// Close commits through Revoked; it must outlive ctx.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := r.consumer.Close(cctx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	draining := false
	for {
		wait := r.Tick
		if !draining {
			select {
			case <-r.drain:
				draining = true
			default:
			}
		}
		if draining {
			wait = r.DrainIdle
		}
		fctx, cancel := context.WithTimeout(ctx, wait)
		recs, ferr := r.consumer.Fetch(fctx)
		cancel()
		switch {
		case ferr == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(ferr, context.DeadlineExceeded):
			if draining {
				return nil // Close commits the tail through Revoked
			}
		default:
			return fmt.Errorf("stage %s: fetch: %w", r.name, ferr)
		}
		if len(recs) > 0 {
			if err := r.stage.Process(ctx, recs); err != nil {
				return fmt.Errorf("stage %s: process: %w", r.name, err)
			}
			for _, rec := range recs {
				r.processed[rec.Partition] = rec.Offset
			}
			r.m.records.Add(float64(len(recs)))
		}
		if r.stage.Due(time.Now()) {
			if err := r.commitAll(ctx); err != nil {
				return err
			}
		}
	}
}

// commitAll commits every partition with unprocessed output, retrying failures with backoff until
// they succeed or ctx is done.
func (r *Runner) commitAll(ctx context.Context) error {
	for p, last := range r.processed {
		if err := r.commit(ctx, p, last); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) commit(ctx context.Context, p int32, last int64) error {
	if c, ok := r.committed[p]; ok && c >= last {
		return nil
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := r.stage.Commit(ctx, p, last)
		if err == nil {
			r.m.commitSeconds.Observe(time.Since(start).Seconds())
			r.m.commits.Inc()
			r.m.committedOffset.Set(float64(last))
			r.committed[p] = last
			r.consumer.Committed(p, last)
			if attempt > 1 {
				r.logger.Info("commit succeeded after retries", "partition", p, "offset", last, "attempts", attempt)
				r.m.failing.Set(0)
			}
			return nil
		}
		r.m.commitErrors.Inc()
		r.m.failing.Set(1)
		r.logger.Warn("commit failed; holding the log and retrying (backpressure)", "partition", p, "offset", last, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("stage %s: commit offset %d: %w (last error: %v)", r.name, last, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// handler adapts the runner to log.Handler; its methods run inside Fetch and Close.
type handler Runner

func (h *handler) Assigned(ctx context.Context, p int32) (int64, error) {
	r := (*Runner)(h)
	next, err := r.stage.Resume(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("stage %s: resume partition %d: %w", r.name, p, err)
	}
	r.committed[p] = next - 1
	r.logger.Info("resuming", "partition", p, "offset", next)
	return next, nil
}

func (h *handler) Revoked(ctx context.Context, p int32) error {
	r := (*Runner)(h)
	last, ok := r.processed[p]
	if !ok || last <= r.committed[p] {
		return nil
	}
	err := r.commit(ctx, p, last)
	delete(r.processed, p)
	return err
}

type runnerMetrics struct {
	records         prometheus.Counter
	commits         prometheus.Counter
	commitErrors    prometheus.Counter
	commitSeconds   prometheus.Histogram
	committedOffset prometheus.Gauge
	failing         prometheus.Gauge
}

func newRunnerMetrics(reg prometheus.Registerer, stage string) *runnerMetrics {
	l := prometheus.Labels{"stage": stage}
	m := &runnerMetrics{
		records:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_stage_records_total", Help: "Log records processed by the stage.", ConstLabels: l}),
		commits:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_stage_commits_total", Help: "Lake commits made by the stage.", ConstLabels: l}),
		commitErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_stage_commit_errors_total", Help: "Lake commits that failed and were retried.", ConstLabels: l}),
		commitSeconds:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_stage_commit_duration_seconds", Help: "Time to write and commit the stage's buffered output.", ConstLabels: l, Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		committedOffset: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_stage_committed_offset", Help: "Last log offset covered by the stage's committed output.", ConstLabels: l}),
		failing:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_stage_commit_failing", Help: "1 while the stage's commits fail and it holds back (backpressure).", ConstLabels: l}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.commits, m.commitErrors, m.commitSeconds, m.committedOffset, m.failing)
	}
	return m
}
