package mqtt

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sluice-project/sluice/internal/envelope"
	sluicelog "github.com/sluice-project/sluice/internal/log"
)

// acker acknowledges QoS 1 messages on the connection that received them. The session's acker
// goroutine calls ack with the messages of one batch that became durable, in arrival order, and ack
// sends them in that order. A failed send is not reported: it means the connection is lost, which the
// session learns from the connection's reader, and the broker redelivers.
type acker interface {
	ack(batch []*pending)
}

// pubackWriter is the acker of both protocols: it writes the PUBACK packets itself, a batch's with one
// Write, to the connection that received the messages (in MQTT 3.1.1 section 3.4 and MQTT 5 section
// 3.4 alike: 0x40, remaining length 2, the packet identifier; MQTT 5 omits reason code 0, success,
// and empty properties). The client libraries' own acknowledgement paths cost more than the rest of
// the source per message (perf, bench/RESULTS.md's setup): paho.mqtt.golang's Message.Ack passes each
// PUBACK through a sync.Once, its store, two goroutines and a packet encoder to its own write(2) (8%
// of the source's CPU with package netbuf under the connection, 12% without); paho.golang's manual
// acknowledgement scans a list of every message in flight on each message and each Ack and sends from
// a 2ms ticker (see v5Session). (MQTT 3.1.1 no longer goes through paho.mqtt.golang's client at all:
// v311Conn.) The other writers and this one share the connection safely: v311Conn writes each packet
// with one Write, paho.golang's connection is wrapped in its packets.ThreadSafeConn (w is that
// wrapper), and package netbuf keeps every Write whole and in order.
// Only the session's acker goroutine calls ack.
type pubackWriter struct {
	w   io.Writer
	buf []byte
}

func (a *pubackWriter) ack(batch []*pending) {
	a.buf = a.buf[:0]
	for _, p := range batch {
		// A broker sends at most the subscription's QoS (1): a QoS 2 message would be a protocol
		// violation, and it stays unacknowledged.
		if p.qos == 1 {
			a.buf = append(a.buf, 0x40, 0x02, byte(p.id>>8), byte(p.id))
		}
	}
	if len(a.buf) > 0 {
		_, _ = a.w.Write(a.buf) // an error means the connection is lost: see acker
	}
	if cap(a.buf) > maxPooledBuf {
		a.buf = nil
	}
}

// pending is one message handed to the log and not yet acknowledged. Pendings are pooled: buf keeps
// its capacity across messages, and done is bound once so AppendAsync allocates nothing for it.
type pending struct {
	ss      *session
	qos     byte
	id      uint16 // the packet identifier, which the PUBACK names
	start   time.Time
	buf     []byte             // the encoded envelope; Key and Value alias it
	entries [1]sluicelog.Entry // what AppendAsync gets
	done    func(error)        // p.complete, bound once

	// Set by complete, read by the acker; both under ss.mu.
	finished bool
	err      error
}

var pendingPool = sync.Pool{New: func() any {
	p := &pending{}
	p.done = p.complete
	return p
}}

// maxPooledBuf is the largest buffer a pending keeps when it goes back to the pool.
const maxPooledBuf = 64 << 10

// complete is the log's done callback: it runs on the log's goroutine (or inline, for memlog) and
// must not block, so it only records the outcome and wakes the acker.
func (p *pending) complete(err error) {
	ss := p.ss
	ss.mu.Lock()
	p.finished, p.err = true, err
	ss.mu.Unlock()
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

// session is the ingest state of one connection: the messages it handed to the log, in arrival order,
// and the goroutine (the acker) that acknowledges them in that order once they are durable. Acks of one
// connection never go to another: a session ends with its connection and a new one starts empty.
type session struct {
	src *Source

	sem  chan struct{} // one slot per message in flight (cfg.MaxInFlight)
	wake chan struct{} // cap 1: a pending finished
	stop chan struct{} // closed by end: take no more messages
	down chan struct{} // closed by lose: the connection is gone (acks cannot be sent)
	fail chan struct{} // closed by the acker on the first failed append

	stopOnce, downOnce, failOnce sync.Once
	ackerDone                    chan struct{}

	mu      sync.Mutex
	acks    acker      // set by the connection's open, before the first message
	queue   []*pending // handed to the log, oldest first
	stopped bool       // no more appends (set with stop)
	noAck   bool       // acknowledge nothing more: connection lost or an append failed
	downErr error      // why the connection went down
	failErr error      // the first append error
	conn    net.Conn   // the network connection, once dialled (closed to abort a connect)
}

func newSession(src *Source) *session {
	ss := &session{
		src:       src,
		sem:       make(chan struct{}, src.cfg.MaxInFlight),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		down:      make(chan struct{}),
		fail:      make(chan struct{}),
		ackerDone: make(chan struct{}),
	}
	go ss.runAcker()
	return ss
}

// handle takes one message from the client library's delivery goroutine (one call at a time, in
// arrival order): it appends the envelope asynchronously and queues the ack. When the session is
// ending it drops the message unacknowledged, for the broker to redeliver on the next connection.
// payload is copied (into the envelope) before handle returns.
func (ss *session) handle(topic string, payload []byte, qos byte, id uint16) {
	select {
	case ss.sem <- struct{}{}: // the common case, without the cost of a three-way select
	default:
		select {
		case ss.sem <- struct{}{}:
		case <-ss.stop:
			return
		case <-ss.down:
			return
		}
	}
	now := time.Now()
	p := pendingPool.Get().(*pending)
	p.ss, p.qos, p.id, p.start, p.finished, p.err = ss, qos, id, now, false, nil
	p.buf = encodeEntry(p.buf[:0], &p.entries[0], now.UnixNano(), qos, topic, payload)

	ss.mu.Lock()
	if ss.stopped {
		ss.mu.Unlock()
		p.release()
		<-ss.sem
		return
	}
	ss.queue = append(ss.queue, p)
	ss.mu.Unlock()
	m := ss.src.m
	m.received[min(qos, 1)].Inc()
	m.inflight.Inc()
	if qos == 0 {
		ss.src.lazy(p.entries[:], p.done) // acknowledged to no one: may share a later fsync
		return
	}
	ss.src.log.AppendAsync(p.entries[:], p.done)
}

// encodeEntry encodes the envelope of one message into buf (reused) and points e at it: Value is the
// whole encoding, Key the topic inside it (the partition key for logs that have partitions).
func encodeEntry(buf []byte, e *sluicelog.Entry, receivedAt int64, qos byte, topic string, payload []byte) []byte {
	env := envelope.Envelope{ReceivedAt: receivedAt, Source: envelope.SourceMQTT, QoS: qos, Topic: topic, Payload: payload}
	buf = env.AppendBinary(buf)
	end := len(buf) - len(payload)
	start := end - len(topic)
	*e = sluicelog.Entry{Key: buf[start:end:end], Value: buf}
	return buf
}

func (p *pending) release() {
	p.ss, p.entries[0] = nil, sluicelog.Entry{}
	if cap(p.buf) > maxPooledBuf {
		p.buf = nil
	}
	pendingPool.Put(p)
}

// runAcker acknowledges finished pendings in arrival order, and stops at the first failed append:
// from then on nothing more is acknowledged on this connection. The acknowledgements of one wake-up
// (typically one group commit's messages) go to the acker together: with package netbuf under the
// connection they leave in one write. It exits once the session is stopped and every pending has
// finished.
func (ss *session) runAcker() {
	defer close(ss.ackerDone)
	var batch, toAck []*pending
	m := ss.src.m
	for {
		<-ss.wake
		ss.mu.Lock()
		n := 0
		for n < len(ss.queue) && ss.queue[n].finished {
			n++
		}
		batch = append(batch[:0], ss.queue[:n]...)
		rest := copy(ss.queue, ss.queue[n:])
		clear(ss.queue[rest:])
		ss.queue = ss.queue[:rest]
		noAck, exit, acks := ss.noAck, ss.stopped && rest == 0, ss.acks
		ss.mu.Unlock()

		toAck = toAck[:0]
		for _, p := range batch {
			switch {
			case p.err != nil:
				m.appendErrors.Inc()
				if !noAck {
					noAck = true
					ss.failed(p.err)
				}
			case p.qos > 0 && !noAck && acks != nil:
				toAck = append(toAck, p)
			}
		}
		if len(toAck) > 0 {
			acks.ack(toAck)
			m.acked.Add(float64(len(toAck)))
			now := time.Now()
			for _, p := range toAck {
				m.ackLatency.Observe(now.Sub(p.start).Seconds())
			}
			clear(toAck)
		}
		if len(batch) > 0 {
			m.inflight.Sub(float64(len(batch)))
		}
		for _, p := range batch {
			p.release()
			<-ss.sem
		}
		clear(batch)
		if exit {
			return
		}
	}
}

// failed records the first append error: nothing more is acknowledged, and Run restarts the connection.
func (ss *session) failed(err error) {
	ss.mu.Lock()
	ss.noAck = true
	if ss.failErr == nil {
		ss.failErr = err
	}
	ss.mu.Unlock()
	ss.failOnce.Do(func() { close(ss.fail) })
}

// lose records that the connection is gone (the first cause wins).
func (ss *session) lose(err error) {
	if err == nil {
		err = errors.New("connection closed")
	}
	ss.mu.Lock()
	ss.noAck = true
	if ss.downErr == nil {
		ss.downErr = err
	}
	ss.mu.Unlock()
	ss.downOnce.Do(func() { close(ss.down) })
}

// end stops taking messages and waits until every message already handed to the log has finished and,
// unless the connection is gone or an append failed, been acknowledged in order.
func (ss *session) end() {
	ss.mu.Lock()
	ss.stopped = true
	ss.mu.Unlock()
	ss.stopOnce.Do(func() { close(ss.stop) })
	select { // wake the acker, which exits at once if nothing is pending
	case ss.wake <- struct{}{}:
	default:
	}
	<-ss.ackerDone
}

// setConn records the dialled connection.
func (ss *session) setConn(c net.Conn) {
	ss.mu.Lock()
	ss.conn = c
	ss.mu.Unlock()
}

// setAcker sets how the session acknowledges; it is called before the connection can deliver messages.
func (ss *session) setAcker(a acker) {
	ss.mu.Lock()
	ss.acks = a
	ss.mu.Unlock()
}

// closeConn closes the network connection, if dialled: it aborts a connect in progress.
func (ss *session) closeConn() {
	ss.mu.Lock()
	c := ss.conn
	ss.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

func (ss *session) errs() (down, fail error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.downErr, ss.failErr
}

// watchedConn reports the first read error of a connection to its session, before the client library
// has finished its own clean-up: a delivery goroutine blocked for an in-flight slot is released at once.
type watchedConn struct {
	net.Conn
	ss *session
}

func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.ss.lose(err)
	}
	return n, err
}
