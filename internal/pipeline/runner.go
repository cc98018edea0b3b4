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
// Resume, Process, Due and Seal are called from the runner's goroutine; the CommitFunc Seal returns
// runs on the runner's commit goroutine, possibly while Process handles later records.
type Stage interface {
	// Resume returns the next offset to read on partition p: the last offset its committed output
	// covers, plus one (0 when nothing was committed).
	Resume(ctx context.Context, p int32) (int64, error)
	// Process buffers the output of recs. Values are only valid during the call: copy what is kept.
	Process(ctx context.Context, recs []slog2.Record) error
	// Due reports whether buffered output should be committed now (rows, bytes or age).
	Due(now time.Time) bool
	// Seal takes everything processed so far out of the stage's buffers (the stage goes on into
	// fresh ones) and returns the function that makes it durable and visible, covering partition p up
	// to and including offset last. The function is called again after a failure, and must then
	// commit the same output with the same offsets.
	Seal(p int32, last int64) CommitFunc
}

// CommitFunc commits output a Stage sealed; see Stage.Seal.
type CommitFunc func(ctx context.Context) error

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
	job       *commitJob      // sealed output being committed (or whose commit gave up); nil when none
	commitCtx context.Context // the commit goroutine's context: outlives Run's until Run returns
	drain     chan struct{}
	caught    chan struct{}
}

// commitJob is output sealed for every partition with uncommitted records, committed in order on the
// commit goroutine.
type commitJob struct {
	parts []sealedPart
	done  chan struct{} // closed when the goroutine returns
	err   error         // why it gave up (its context ended); set before done is closed
}

type sealedPart struct {
	p      int32
	last   int64
	commit CommitFunc
	ok     bool
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
// Either way it returns after every commit it started has ended.
func (r *Runner) Run(ctx context.Context) (err error) {
	commitCtx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	r.commitCtx = commitCtx
	defer func() {
		// Close waits for the commit in flight and commits the rest through Revoked; it must outlive
		// ctx.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := r.consumer.Close(cctx); cerr != nil && err == nil {
			err = cerr
		}
		stopCommits()
		if r.job != nil {
			<-r.job.done // it gave up (Close timed out): the log keeps its records for the next start
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
			for i, rec := range recs {
				// A partition's records come in offset order: its last one in each run is enough,
				// and a map assignment per record was 1% of the in-process pipeline's CPU.
				if i+1 == len(recs) || recs[i+1].Partition != rec.Partition {
					r.processed[rec.Partition] = rec.Offset
				}
			}
			r.m.records.Add(float64(len(recs)))
		}
		if err := r.finish(ctx, false); err != nil {
			return err
		}
		if r.stage.Due(time.Now()) {
			if err := r.startCommit(ctx); err != nil {
				return err
			}
		}
	}
}

// startCommit waits for the commit in flight, then seals the stage's output for every partition
// with uncommitted records and commits it on the commit goroutine.
func (r *Runner) startCommit(ctx context.Context) error {
	if err := r.finish(ctx, true); err != nil {
		return err
	}
	j := &commitJob{done: make(chan struct{})}
	for p, last := range r.processed {
		if c, ok := r.committed[p]; ok && c >= last {
			continue
		}
		j.parts = append(j.parts, sealedPart{p: p, last: last, commit: r.stage.Seal(p, last)})
	}
	if len(j.parts) == 0 {
		return nil
	}
	r.job = j
	ctx = r.commitCtx
	go func() {
		defer close(j.done)
		for i := range j.parts {
			if err := r.retry(ctx, &j.parts[i]); err != nil {
				j.err = err
				return
			}
		}
	}()
	return nil
}

// finish takes the result of the commit in flight: with wait, it waits for it (or ctx); without, it
// returns at once if the commit has not ended. A commit that gave up is retried here, in order,
// before anything sealed later. Once the output is durable, the log hears of it.
func (r *Runner) finish(ctx context.Context, wait bool) error {
	j := r.job
	if j == nil {
		return nil
	}
	if wait {
		select {
		case <-j.done:
		case <-ctx.Done():
			return fmt.Errorf("stage %s: waiting for the commit in flight: %w", r.name, ctx.Err())
		}
	} else {
		select {
		case <-j.done:
		default:
			return nil
		}
	}
	if j.err != nil {
		if !wait {
			return nil
		}
		for i := range j.parts {
			if err := r.retry(ctx, &j.parts[i]); err != nil {
				return err
			}
		}
	}
	r.job = nil
	for _, sp := range j.parts {
		r.committed[sp.p] = sp.last
		r.consumer.Committed(sp.p, sp.last)
	}
	return nil
}

// retry calls sp's commit until it succeeds (backing off between failures) or ctx is done.
func (r *Runner) retry(ctx context.Context, sp *sealedPart) error {
	if sp.ok {
		return nil
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := sp.commit(ctx)
		if err == nil {
			r.m.commitSeconds.Observe(time.Since(start).Seconds())
			r.m.commits.Inc()
			r.m.committedOffset.Set(float64(sp.last))
			sp.ok = true
			if attempt > 1 {
				r.logger.Info("commit succeeded after retries", "partition", sp.p, "offset", sp.last, "attempts", attempt)
				r.m.failing.Set(0)
			}
			return nil
		}
		r.m.commitErrors.Inc()
		r.m.failing.Set(1)
		r.logger.Warn("commit failed; holding the log and retrying (backpressure)", "partition", sp.p, "offset", sp.last, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("stage %s: commit offset %d: %w (last error: %v)", r.name, sp.last, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// handler adapts the runner to log.Handler; its methods run inside Fetch and Close, on the runner's
// goroutine.
type handler Runner

func (h *handler) Assigned(ctx context.Context, p int32) (int64, error) {
	r := (*Runner)(h)
	// Resume reads the lake's log, which the commit in flight writes to.
	if err := r.finish(ctx, true); err != nil {
		return 0, fmt.Errorf("stage %s: resume partition %d: %w", r.name, p, err)
	}
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
	if err := r.finish(ctx, true); err != nil {
		return err
	}
	last, ok := r.processed[p]
	if !ok || last <= r.committed[p] {
		return nil
	}
	sp := sealedPart{p: p, last: last, commit: r.stage.Seal(p, last)}
	if err := r.retry(ctx, &sp); err != nil {
		return err
	}
	r.committed[p] = last
	r.consumer.Committed(p, last)
	delete(r.processed, p)
	return nil
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
