package broker

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// pendingOverhead is what the broker holds for one message between reading it and its append's end,
// beside its topic and payload: the envelope encoding's buffer, mochi's packet and the pipeline's
// bookkeeping. Measured with 32 pipelined QoS 1 connections of 512 messages each (heap profile of
// mochi and this package): about 2.5KiB per message of the nested shape (~250-byte payloads), of
// which ~2KiB do not depend on the payload.
const pendingOverhead = 2 << 10

// pending bounds the memory of messages read and not yet done with (broker.pending_bytes) over all
// connections: a connection's read goroutine takes its message's share before appending it and
// waits, reading nothing more (TCP backpressure), while the whole budget is taken. The share is given
// back once the log is done with the message (QoS 0, and QoS 1 and 2 when not pipelined) or once it
// has been acknowledged (pipelined). Without it, memory would grow with connections × receive_maximum,
// and without limit for QoS 0 while the log cannot write (a full disk).
type pending struct {
	sem      *semaphore.Weighted
	max      int64
	held     atomic.Int64 // bytes taken now (sluice_broker_pending_bytes)
	waits    atomic.Int64 // messages that had to wait for room (sluice_broker_pending_waits_total)
	lastWarn atomic.Int64 // unix nanos of the last "budget full" warning
}

func newPending(max int64) *pending {
	return &pending{sem: semaphore.NewWeighted(max), max: max}
}

// cost is the share of a message with this topic and payload; a message larger than the whole
// budget takes all of it, so it still gets through, alone.
func (p *pending) cost(topic string, payload []byte) int64 {
	return min(int64(len(topic)+len(payload))+pendingOverhead, p.max)
}

// take waits up to timeout for n bytes of room; full reports whether it had to wait (the budget was
// all taken when it asked), so the caller can say so.
func (p *pending) take(n int64, timeout time.Duration) (ok, full bool) {
	if p.sem.TryAcquire(n) {
		p.held.Add(n)
		return true, false
	}
	p.waits.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.sem.Acquire(ctx, n); err != nil {
		return false, true
	}
	p.held.Add(n)
	return true, true
}

// give returns n bytes taken by take (0: nothing to return).
func (p *pending) give(n int64) {
	if n > 0 {
		p.held.Add(-n)
		p.sem.Release(n)
	}
}
