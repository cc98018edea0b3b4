package query

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Ingest comes first. On a machine ingest keeps busy, every CPU second a query takes is one ingest
// does not get. Priorities do not help: the thread that calls a query executes its share at normal
// priority, and lowering that thread stalls the process (see lowPriority) or inverts priorities
// inside DuckDB (measured: freshness p99 212–413 ms when the call ran on a lowered thread); lowering
// only DuckDB's workers (query.nice) leaves the caller polling for them. So while readings are
// arriving, queries are rationed instead: together
// they may execute for query.execution_share of the wall-clock time, with query.execution_burst of
// execution time available at once, so an interactive query runs at once and only a sustained query
// load waits. Without ingest (no hot rows handed over for ingestIdle) queries are not held back.

// ingestIdle is how long after the last hot rows arrived ingest counts as idle.
const ingestIdle = time.Second

// ration is a token bucket of query execution time.
type ration struct {
	share float64       // refill: seconds of execution per second
	burst time.Duration // capacity

	lastIngest atomic.Int64 // Unix nanoseconds of the last hot rows (0: never)

	mu     sync.Mutex
	tokens time.Duration // may go negative: a query is charged what it took
	last   time.Time     // of the last refill
}

func newRation(share float64, burst time.Duration, now time.Time) *ration {
	return &ration{share: share, burst: burst, tokens: burst, last: now}
}

// ingest records that readings arrived at now.
func (r *ration) ingest(now time.Time) { r.lastIngest.Store(now.UnixNano()) }

// active reports whether readings arrived within ingestIdle before now.
func (r *ration) active(now time.Time) bool {
	t := r.lastIngest.Load()
	return t != 0 && now.Sub(time.Unix(0, t)) < ingestIdle
}

// refill adds what accrued since the last refill. Caller holds mu.
func (r *ration) refill(now time.Time) {
	if d := now.Sub(r.last); d > 0 {
		r.tokens = min(r.burst, r.tokens+time.Duration(r.share*float64(d)))
		r.last = now
	}
}

// delay returns how long a query must wait at now before it may execute (0: at once).
func (r *ration) delay(now time.Time) time.Duration {
	if r.share >= 1 || !r.active(now) {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refill(now)
	if r.tokens > 0 {
		return 0
	}
	return time.Duration(float64(-r.tokens)/r.share) + time.Millisecond
}

// charge takes d of execution that ended at now. Without ingest nothing is charged: a debt run up
// while nothing arrives would hold queries back once readings flow again.
func (r *ration) charge(d time.Duration, now time.Time) {
	if r.share >= 1 || !r.active(now) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refill(now)
	r.tokens -= d
}

// wait blocks until a query may execute, ctx is done or closed is closed, and returns how long it
// waited.
func (r *ration) wait(ctx context.Context, closed <-chan struct{}) (time.Duration, error) {
	start := time.Now()
	for {
		d := r.delay(time.Now())
		if d <= 0 {
			return time.Since(start), nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), ctx.Err()
		case <-closed:
			t.Stop()
			return time.Since(start), context.Canceled
		}
	}
}
