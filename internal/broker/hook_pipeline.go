package broker

import (
	"errors"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Pipelined QoS 1 and 2 (broker.pipeline: true).
//
// In the default mode a connection's read goroutine waits in the hook for each message's group commit,
// so one connection gets one message per commit. Pipelined, the hook only queues the append
// (AppendAsync) and returns packets.ErrRejectPacket, so mochi acknowledges nothing and reads the next
// packet at once; many of the connection's messages then share each commit. When the log calls done, the
// connection's acker hands the message back to mochi with Server.InjectPacket, and mochi's own
// processPublish sends the PUBACK (PUBREC), retains it and routes it to subscribers exactly as for any
// publish. A PUBACK is therefore still written only after the message is durable, and in publish order:
// done runs in append order and each connection has one acker draining a FIFO. If an append fails, the
// connection is disconnected and nothing after it is acknowledged (the client resends; duplicates are
// removed downstream).
//
// The re-injected packet is recognised by SessionPresent, a CONNACK-only field that mochi never sets on
// a PUBLISH it reads (PublishDecode does not touch it, and no PUBLISH encoding reads it). Its inbound
// topic alias is cleared, since the first pass already resolved it and applying it again could undo a
// newer mapping the client has made since. At most receive_maximum messages per connection wait for the
// log; past that the read goroutine waits (TCP backpressure), and past append_timeout it disconnects.
type pipe struct {
	b        *Broker
	cl       *mqtt.Client
	max      int
	space    chan struct{} // a slot was freed (buffered, 1)
	mu       sync.Mutex
	inflight int        // appended and not yet acknowledged (or given up)
	q        []pipeItem // q[head:] are done, waiting for the acker, in append order
	head     int
	running  bool // an acker goroutine is draining q
	failed   bool // an append failed: the client is disconnected, nothing more is acknowledged
}

// pipeItem is one message the log is done with: its appendBuf (holding the packet) goes back to the
// pool once the acker has handed the packet to mochi, so a queued message costs one packet, not two.
type pipeItem struct {
	ab  *appendBuf
	err error
}

// corkBatch is the most PUBACKs the acker gathers into one write.
const corkBatch = 256

var (
	errWindowTimeout = errors.New("no room for another unacknowledged message within append_timeout")
	errEarlierFailed = errors.New("an earlier message of this connection was not stored")
)

func (b *Broker) pipeFor(cl *mqtt.Client) *pipe {
	b.pipesMu.Lock()
	defer b.pipesMu.Unlock()
	p := b.pipes[cl]
	if p == nil {
		p = &pipe{b: b, cl: cl, max: b.cfg.ReceiveMaximum, space: make(chan struct{}, 1)}
		b.pipes[cl] = p
	}
	return p
}

// dropPipe forgets a client whose read goroutine has ended; its acker keeps the pipe until drained.
func (b *Broker) dropPipe(cl *mqtt.Client) {
	b.pipesMu.Lock()
	delete(b.pipes, cl)
	b.pipesMu.Unlock()
}

// reserve takes a slot for one more unacknowledged message, waiting up to timeout.
func (p *pipe) reserve(timeout time.Duration) bool {
	var deadline <-chan time.Time
	for {
		p.mu.Lock()
		if p.inflight < p.max {
			p.inflight++
			p.mu.Unlock()
			return true
		}
		p.mu.Unlock()
		if deadline == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-p.space:
		case <-deadline:
			return false
		}
	}
}

func (p *pipe) release() {
	p.mu.Lock()
	p.inflight--
	p.mu.Unlock()
	select {
	case p.space <- struct{}{}:
	default:
	}
}

func (p *pipe) hasFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// ingestPipelined is ingest's QoS 1 and 2 path in pipelined mode; ab holds the encoded message.
func (b *Broker) ingestPipelined(cl *mqtt.Client, pk packets.Packet, ab *appendBuf) error {
	p := b.pipeFor(cl)
	var err error
	switch {
	case !p.reserve(b.cfg.AppendTimeout):
		err = errWindowTimeout
	case p.hasFailed() || cl.Closed(): // checked after reserve, which may have waited
		p.release()
		err = errEarlierFailed
	case !b.async.add():
		p.release()
		err = ErrClosed
	}
	if err != nil {
		b.putBuf(ab)
		return b.notStored(cl, pk, err)
	}
	pk.Properties.TopicAliasFlag, pk.Properties.TopicAlias = false, 0
	ab.pipe, ab.pk = p, pk
	b.log.AppendAsync(ab.entries[:], ab.pdone)
	return packets.ErrRejectPacket // not an error: mochi acknowledges it later, through the acker
}

// pipeDone runs on the log's goroutine: it queues the outcome for the connection's acker.
func (ab *appendBuf) pipeDone(err error) {
	b, p := ab.b, ab.pipe
	if err == nil {
		b.m.appendSeconds[min(ab.pk.FixedHeader.Qos, 2)].Observe(time.Since(ab.start).Seconds())
	}
	p.mu.Lock()
	p.q = append(p.q, pipeItem{ab: ab, err: err})
	start := !p.running && b.ackers.add()
	if start {
		p.running = true
	}
	p.mu.Unlock()
	if start {
		go p.ack()
	}
	b.async.done()
}

// ack drains the connection's queue in order: mochi acknowledges and routes each durable message.
//
// The PUBACKs of what it finds queued at once (the messages of one group commit, mostly) go out in
// one write when the connection can be corked (TCP and TLS), at most corkBatch at a time.
func (p *pipe) ack() {
	b := p.b
	defer b.ackers.done()
	cc, _ := p.cl.Net.Conn.(*corkConn)
	corked := 0 // PUBACKs gathered since cc.cork
	for {
		p.mu.Lock()
		if corked > 0 && (p.head == len(p.q) || corked == corkBatch) {
			p.mu.Unlock()
			cc.uncork() // then look again: more may have come meanwhile
			corked = 0
			continue
		}
		if p.head == len(p.q) {
			p.q, p.head = p.q[:0], 0 // reuse the array
			p.running = false
			p.mu.Unlock()
			return
		}
		if cc != nil {
			if corked == 0 {
				cc.cork()
			}
			corked++
		}
		it := p.q[p.head]
		p.q[p.head] = pipeItem{}
		p.head++
		pk, held := it.ab.pk, it.ab.held
		it.ab.pipe, it.ab.pk, it.ab.held = nil, packets.Packet{}, 0
		b.putBuf(it.ab) // the packet's share of pending_bytes is given back once mochi is done with it
		failedNow := it.err != nil && !p.failed
		if it.err != nil {
			p.failed = true
			b.m.appendErrors[min(pk.FixedHeader.Qos, 2)].Inc()
		}
		skip := p.failed
		p.mu.Unlock()

		switch {
		case failedNow:
			if corked > 0 { // the PUBACKs gathered before go out ahead of the disconnect
				cc.uncork()
				corked = 0
			}
			qos := min(pk.FixedHeader.Qos, 2)
			b.logger.Warn("message not stored: disconnecting its publisher without an acknowledgement, so that it resends",
				"client", p.cl.ID, "remote", p.cl.Net.Remote, "topic", pk.TopicName, "qos", qos, "err", it.err)
			b.refuse(p.cl, it.err)
		case skip:
		default:
			pk.SessionPresent = true // marks it as durable for the hook
			if err := b.srv.InjectPacket(p.cl, pk); err != nil {
				b.logger.Debug("acknowledge durable message", "client", p.cl.ID, "err", err)
			}
		}
		b.pending.give(held)
		p.release()
	}
}
