package simulate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Stats is what a run did. Run returns it even with an error.
type Stats struct {
	Published  int64         // messages the broker acknowledged (QoS 1) or written to a connection (QoS 0), duplicates included
	Sent       int64         // messages handed to the MQTT client
	Unacked    int64         // sent but not acknowledged when Run returned (QoS 1), or dropped while disconnected (QoS 0)
	Silent     int64         // sensor slots left empty by the gap fault
	Lagged     int64         // slots skipped because publishing fell more than lagLimit behind schedule (a slow or lost broker)
	Reconnects int64         // connections re-established after a loss
	Elapsed    time.Duration // from the first publish to the last acknowledgement
	Faults     FaultCounts   // published messages per fault
}

// FaultCounts counts published messages per fault label (a stuck run of 12 messages counts 12).
type FaultCounts struct {
	Spike, Stuck, Gap, Duplicate, Late, OutOfOrder, Malformed int64
}

// Rate returns the achieved rate: published messages per second of Elapsed.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Published) / s.Elapsed.Seconds()
}

func (f *FaultCounts) add(fault Fault) {
	switch fault {
	case FaultSpike:
		f.Spike++
	case FaultStuck:
		f.Stuck++
	case FaultGap:
		f.Gap++
	case FaultDuplicate:
		f.Duplicate++
	case FaultLate:
		f.Late++
	case FaultOutOfOrder:
		f.OutOfOrder++
	case FaultMalformed:
		f.Malformed++
	}
}

func (f *FaultCounts) merge(o FaultCounts) {
	f.Spike += o.Spike
	f.Stuck += o.Stuck
	f.Gap += o.Gap
	f.Duplicate += o.Duplicate
	f.Late += o.Late
	f.OutOfOrder += o.OutOfOrder
	f.Malformed += o.Malformed
}

const (
	// lagLimit is how far publishing may fall behind schedule before the missed slots are skipped
	// rather than sent in a burst with stale timestamps.
	lagLimit = 100 * time.Millisecond
	// maxBatch bounds the messages generated per wake-up.
	maxBatch = 512
	// cancelDrain bounds the wait for outstanding acknowledgements after ctx is cancelled.
	cancelDrain = 2 * time.Second
)

// Run publishes simulated telemetry as cfg says until cfg.Count messages are published, cfg.Duration
// has passed, or ctx is done; then it waits (up to cfg.DrainTimeout, or 2s after ctx is done) for
// outstanding acknowledgements and disconnects. It returns ctx's error when ctx ended the run, and the
// stats in every case.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (Stats, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if es := cfg.Validate(); len(es) > 0 {
		return Stats{}, fmt.Errorf("simulate: %w", es)
	}
	gen, err := NewGenerator(cfg, nil)
	if err != nil {
		return Stats{}, err
	}
	tw, err := openTruth(cfg.Truth)
	if err != nil {
		return Stats{}, err
	}
	conns, err := connectAll(ctx, cfg, logger, tw)
	if err != nil {
		return Stats{}, errors.Join(err, tw.close())
	}
	slot := time.Duration(float64(cfg.Interval) / float64(gen.Len()))
	mode := "interval"
	if cfg.Rate > 0 {
		slot, mode = time.Duration(float64(time.Second)/cfg.Rate), "rate"
	}
	slot = max(slot, 1)
	perSensor := slot * time.Duration(gen.Len())
	logger.Info("simulating", "broker", cfg.Broker, "sensors", gen.Len(), "shape", cfg.Shape, "mode", mode,
		"rate", fmt.Sprintf("%.0f msg/s", float64(time.Second)/float64(slot)), "per_sensor_interval", perSensor,
		"qos", cfg.QoS, "connections", len(conns), "count", cfg.Count, "duration", cfg.Duration)
	if len(conns) > gen.Len() {
		logger.Warn("more connections than sensors: a sensor publishes on one connection only, so some stay idle", "connections", len(conns), "sensors", gen.Len())
	}
	if perSensor < gen.Resolution() {
		logger.Warn("each sensor publishes more often than the shape's timestamp resolution: some of its messages will share a timestamp and look like duplicates downstream; use a larger fleet or a lower rate",
			"per_sensor_interval", perSensor, "resolution", gen.Resolution())
	}

	drain := make(chan struct{}) // closed when waiting for acknowledgements must stop
	var once sync.Once
	stopWaiting := func() { once.Do(func() { close(drain) }) }
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.publishLoop(ctx) })
		wg.Go(func() { c.ackLoop(drain) })
	}
	p := pacer{gen: gen, conns: conns, cfg: cfg, slot: slot, rate: cfg.Rate > 0, start: start}
	p.run(ctx)
	for _, c := range conns {
		close(c.in)
	}

	// Wait for outstanding acknowledgements: up to DrainTimeout, or cancelDrain once ctx is done.
	t := time.AfterFunc(cfg.DrainTimeout, stopWaiting)
	defer t.Stop()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(cancelDrain, stopWaiting) })
	defer stop()
	wg.Wait()
	// Messages whose tokens completed before their PUBACK (re-sent after a reconnect, or after a
	// failed write) are acknowledged when paho's store lets go of them: wait for that too.
	waitStores(conns, drain)

	stats := Stats{Silent: gen.silentSlots, Lagged: p.lagged}
	last := start
	for _, c := range conns {
		c.settle()
		c.client.Disconnect(250)
		stats.Published += c.published
		stats.Sent += c.sent
		stats.Unacked += c.unacked
		stats.Reconnects += c.reconnects.Load()
		stats.Faults.merge(c.faults)
		if c.lastAck.After(last) {
			last = c.lastAck
		}
	}
	stats.Elapsed = last.Sub(start)
	if stats.Published == 0 {
		stats.Elapsed = time.Since(start)
	}
	err = tw.close()
	if stats.Unacked > 0 {
		logger.Warn("messages were not acknowledged by the end; they are not counted and have no truth line (the broker may still have them)", "unacked", stats.Unacked)
	}
	logger.Info("simulation finished", "published", stats.Published, "unacked", stats.Unacked, "elapsed", stats.Elapsed.Round(time.Millisecond),
		"rate", fmt.Sprintf("%.0f msg/s", stats.Rate()), "reconnects", stats.Reconnects, "lagged_slots", stats.Lagged)
	if ctx.Err() != nil {
		return stats, errors.Join(ctx.Err(), err)
	}
	return stats, err
}

// pacer owns the generator: it takes slots on schedule, generates their messages and hands them, in
// batches, to the connection each sensor publishes on.
type pacer struct {
	gen    *Generator
	conns  []*conn
	cfg    Config
	slot   time.Duration // time between slots
	rate   bool          // rate mode: silent sensors give their slot to the next one
	start  time.Time
	lagged int64

	batches []*batch // per connection, being filled
	scratch []byte   // payloads are generated into its unused tail
}

func (p *pacer) run(ctx context.Context) {
	p.batches = make([]*batch, len(p.conns))
	var end time.Time
	if p.cfg.Duration > 0 {
		end = p.start.Add(p.cfg.Duration)
	}
	lagSlots := int64(lagLimit/p.slot) + maxBatch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var taken, msgs int64
	for {
		now := time.Now()
		if ctx.Err() != nil || (!end.IsZero() && !now.Before(end)) {
			return
		}
		due := int64(now.Sub(p.start)/p.slot) + 1 // slots 0 … due-1 are due
		if behind := due - taken; behind > lagSlots {
			p.lagged += behind - 1
			taken = due - 1
		}
		if taken >= due {
			wake := p.start.Add(time.Duration(taken) * p.slot)
			if !end.IsZero() && end.Before(wake) {
				wake = end
			}
			timer.Reset(time.Until(wake))
			select {
			case <-timer.C:
				continue
			case <-ctx.Done():
				return
			}
		}
		for n := min(due-taken, maxBatch); n > 0; n-- {
			ts := p.start.Add(time.Duration(taken) * p.slot)
			taken++
			if p.rate {
				p.add(p.gen.Next(p.bufFor(), ts))
				msgs++
			} else if m, ok := p.gen.Slot(p.bufFor(), ts); ok {
				p.add(m)
				msgs++
			}
			if p.cfg.Count > 0 && msgs >= p.cfg.Count {
				p.flush(ctx)
				return
			}
			if p.gen.Pending() {
				p.add(p.gen.Next(p.bufFor(), ts))
				msgs++
				if p.cfg.Count > 0 && msgs >= p.cfg.Count {
					p.flush(ctx)
					return
				}
			}
		}
		if !p.flush(ctx) {
			return
		}
	}
}

// batch is a run of messages for one connection; their payloads share the pacer's scratch arrays,
// which are never written again once a payload is in them.
type batch struct {
	msgs []outMsg
}

type outMsg struct {
	topic   string
	payload []byte
	truth   Truth
	acked   uint32 // QoS 1: set (atomically) by the connection's ackStore on PUBACK
}

const batchBuf = 32 << 10

// bufFor returns the buffer the next payload is appended to: the unused tail of a shared scratch.
func (p *pacer) bufFor() []byte {
	if p.scratch == nil || cap(p.scratch)-len(p.scratch) < 512 {
		p.scratch = make([]byte, 0, batchBuf)
	}
	return p.scratch[len(p.scratch):]
}

// add files m with its sensor's connection. m.Payload is in p.scratch's array unless the generator
// had to grow it; either way it is never written again.
func (p *pacer) add(m Message) {
	if n := len(m.Payload); n > 0 {
		tail := p.scratch[len(p.scratch):cap(p.scratch)]
		if n <= len(tail) && &tail[:1][0] == &m.Payload[0] {
			p.scratch = p.scratch[:len(p.scratch)+n]
		}
	}
	ci := m.Sensor % len(p.conns)
	b := p.batches[ci]
	if b == nil {
		b = &batch{msgs: make([]outMsg, 0, 16)}
		p.batches[ci] = b
	}
	b.msgs = append(b.msgs, outMsg{topic: m.Topic, payload: m.Payload, truth: m.Truth})
}

// flush hands the filled batches to their connections; false when ctx ended first.
func (p *pacer) flush(ctx context.Context) bool {
	for i, b := range p.batches {
		if b == nil {
			continue
		}
		p.batches[i] = nil
		select {
		case p.conns[i].in <- b:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// truthWriter appends truth lines to a file; ackers on several connections share it.
type truthWriter struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

func openTruth(path string) (*truthWriter, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("simulate: truth file: %w", err)
	}
	return &truthWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// write appends one line (line must end in '\n').
func (t *truthWriter) write(line []byte) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.err == nil {
		_, t.err = t.w.Write(line)
	}
	t.mu.Unlock()
}

func (t *truthWriter) close() error {
	if t == nil {
		return nil
	}
	err := t.err
	if ferr := t.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("simulate: truth file: %w", err)
	}
	return nil
}
