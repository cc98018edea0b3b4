package mqtt

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/sluice-project/sluice/internal/envelope"
	sluicelog "github.com/sluice-project/sluice/internal/log"
)

// acker acknowledges one received QoS 1 message on the connection that received it.
type acker interface{ Ack() }

// pending is one message handed to the log and not yet acknowledged. Pendings are pooled: buf keeps
// its capacity across messages, and done is bound once so AppendAsync allocates nothing for it.
type pending struct {
	ss      *session
	ack     acker // nil for QoS 0
	qos     byte
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
func (ss *session) handle(topic string, payload []byte, qos byte, ack acker) {
	select {
	case ss.sem <- struct{}{}:
	case <-ss.stop:
		return
	case <-ss.down:
		return
	}
	now := time.Now()
	p := pendingPool.Get().(*pending)
	p.ss, p.qos, p.start, p.finished, p.err = ss, qos, now, false, nil
	if qos > 0 {
		p.ack = ack
	}
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
	p.ss, p.ack, p.entries[0] = nil, nil, sluicelog.Entry{}
	if cap(p.buf) > maxPooledBuf {
		p.buf = nil
	}
	pendingPool.Put(p)
}

// runAcker acknowledges finished pendings in arrival order, and stops at the first failed append:
// from then on nothing more is acknowledged on this connection. It exits once the session is stopped
// and every pending has finished.
func (ss *session) runAcker() {
	defer close(ss.ackerDone)
	var batch []*pending
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
		noAck, exit := ss.noAck, ss.stopped && rest == 0
		ss.mu.Unlock()

		for _, p := range batch {
			switch {
			case p.err != nil:
				m.appendErrors.Inc()
				if !noAck {
					noAck = true
					ss.failed(p.err)
				}
			case p.ack != nil && !noAck:
				p.ack.Ack()
				m.acked.Inc()
				m.ackLatency.Observe(time.Since(p.start).Seconds())
			}
			p.release()
			m.inflight.Dec()
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
