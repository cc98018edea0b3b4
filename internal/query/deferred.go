package query

import (
	"context"
	"sync"

	"github.com/sluice-project/sluice/internal/lake"
)

// maxDeferred bounds the readings a Deferred keeps before its engine is attached (each costs about
// 110 bytes: 256Ki of them about 28MiB, a few seconds of a large fleet); past it the newest wait for
// their commit to become visible (they are never counted twice, only later).
const maxDeferred = 256 << 10

// Deferred stands in for an engine that is still opening (Open reads every Delta log, which takes a
// while on a large lake, and sluice should take messages meanwhile). The decoder feeds it from the
// start; it keeps the readings handed to it, drops those a commit covers, and hands the rest to the
// engine when Attach is called. It implements the decoder's hot sink.
type Deferred struct {
	mu        sync.Mutex
	e         *Engine
	rows      map[int32][]lake.Reading
	committed map[int32]int64
	n         int
}

// NewDeferred returns a Deferred with no engine yet.
func NewDeferred() *Deferred {
	return &Deferred{rows: map[int32][]lake.Reading{}, committed: map[int32]int64{}}
}

// AddReadings implements the decoder's hot sink.
func (d *Deferred) AddReadings(partition int32, rows []lake.Reading) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.e != nil {
		d.e.AddReadings(partition, rows)
		return
	}
	if d.n+len(rows) > maxDeferred {
		return
	}
	d.rows[partition] = append(d.rows[partition], rows...)
	d.n += len(rows)
}

// CommittedReadings implements the decoder's hot sink.
func (d *Deferred) CommittedReadings(ctx context.Context, partition int32, last int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.e != nil {
		d.e.CommittedReadings(ctx, partition, last)
		return
	}
	d.committed[partition] = last
	kept := d.rows[partition][:0]
	for _, r := range d.rows[partition] {
		if r.IngestID > last {
			kept = append(kept, r)
		}
	}
	d.n -= len(d.rows[partition]) - len(kept)
	clear(d.rows[partition][len(kept):])
	d.rows[partition] = kept
}

// Attach hands the kept readings to e, makes e take the commits reported meanwhile, and passes
// everything on to e from now on. e must have been opened WithHotReadings.
func (d *Deferred) Attach(ctx context.Context, e *Engine) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, rows := range d.rows {
		e.AddReadings(p, rows)
	}
	for p, last := range d.committed {
		e.CommittedReadings(ctx, p, last)
	}
	d.rows, d.committed, d.n = nil, nil, 0
	d.e = e
}
