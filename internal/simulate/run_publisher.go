package simulate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluice-project/sluice/internal/netbuf"
)

// conn is one MQTT connection and the two goroutines that use it: publishLoop hands messages to paho
// (at most Inflight unacknowledged), ackLoop waits for their tokens in order and counts them.
type conn struct {
	idx    int
	qos    byte
	client paho.Client
	store  *ackStore // paho keeps each QoS 1 message here until its PUBACK
	logger *slog.Logger
	truth  *truthWriter

	in      chan *batch   // from the pacer
	window  chan struct{} // one token per unacknowledged message
	pending chan inflight // publishLoop -> ackLoop, in publish order

	reconnects atomic.Int64
	connected  atomic.Bool // connected at least once

	// Written by publishLoop only; read after it ends.
	sent int64

	// Written by ackLoop only (then settle); read after they end.
	published, unacked int64
	faults             FaultCounts
	lastAck            time.Time
	limbo              []*outMsg // QoS 1 messages whose token completed before their PUBACK
	line               []byte
}

type inflight struct {
	tok paho.Token // nil: not sent (QoS 0 while disconnected)
	msg *outMsg
}

// connectAll opens cfg.Connections connections, 32 at a time, and fails if any cannot connect.
func connectAll(ctx context.Context, cfg Config, logger *slog.Logger, tw *truthWriter) ([]*conn, error) {
	suffix := rand.Uint32() & 0xffffff // tells apart simulators sharing a client id prefix
	conns := make([]*conn, cfg.Connections)
	errs := make([]error, len(conns))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range conns {
		c := newConn(i, cfg, fmt.Sprintf("%s-%06x-%d", cfg.ClientID, suffix, i), logger, tw)
		conns[i] = c
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.connect(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range conns {
			c.client.Disconnect(0)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("simulate: connect to %s: %w", cfg.Broker, errs[firstErr(errs)])
	}
	return conns, nil
}

func firstErr(errs []error) int {
	for i, err := range errs {
		if err != nil {
			return i
		}
	}
	return 0
}

func newConn(i int, cfg Config, clientID string, logger *slog.Logger, tw *truthWriter) *conn {
	c := &conn{
		idx: i, qos: byte(cfg.QoS), store: newAckStore(), logger: logger, truth: tw,
		in:      make(chan *batch, 4),
		window:  make(chan struct{}, cfg.Inflight),
		pending: make(chan inflight, cfg.Inflight),
	}
	opts := paho.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetCleanSession(true). // QoS 1 publishes need no broker session; unacknowledged ones are re-sent from the store
		SetStore(c.store).
		SetAutoReconnect(true).
		SetConnectRetry(false). // an unreachable broker at start is an error, not a silent wait
		SetMaxReconnectInterval(2 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(false).
		SetOnConnectHandler(func(paho.Client) {
			if c.connected.Swap(true) {
				c.reconnects.Add(1)
				logger.Info("reconnected; re-sending unacknowledged messages", "conn", i)
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			logger.Warn("connection lost; reconnecting", "conn", i, "err", err)
		})
	if u, err := url.Parse(cfg.Broker); err == nil && (u.Scheme == "mqtt" || u.Scheme == "tcp") {
		opts.SetCustomOpenConnectionFn(dialBuffered)
	}
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username)
		opts.SetPassword(cfg.Password)
	}
	c.client = paho.NewClient(opts)
	return c
}

func (c *conn) connect(ctx context.Context) error {
	tok := c.client.Connect()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publishLoop publishes the batches from the pacer, waiting while Inflight messages are
// unacknowledged. Once ctx is done it drops what is left.
func (c *conn) publishLoop(ctx context.Context) {
	defer close(c.pending)
	for b := range c.in {
		for i := range b.msgs {
			if ctx.Err() != nil {
				break
			}
			m := &b.msgs[i]
			select {
			case c.window <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			if c.qos == 0 && !c.client.IsConnectionOpen() {
				// paho completes a QoS 0 publish at once while reconnecting, without sending it.
				c.pending <- inflight{msg: m}
				continue
			}
			c.sent++
			tok := c.client.Publish(m.topic, c.qos, false, m.payload)
			if c.qos > 0 {
				c.store.register(tok.(*paho.PublishToken).MessageID(), m)
			}
			c.pending <- inflight{tok: tok, msg: m}
		}
	}
}

// ackLoop waits for each message's token in publish order (the broker acknowledges in order on one
// connection) and frees its window slot. A QoS 0 message is published when its token completes
// without error; a QoS 1 message when paho's store saw its PUBACK (see ackStore), which is usually
// the case by the time its token completes; if not, it waits in limbo for settle. Once drain is
// closed ackLoop stops waiting: messages not done by then are unacknowledged.
func (c *conn) ackLoop(drain <-chan struct{}) {
	logged := false
	for p := range c.pending {
		done := p.tok != nil
		if done {
			select {
			case <-p.tok.Done():
			case <-drain:
				select {
				case <-p.tok.Done():
				default:
					done = false
				}
			}
		}
		<-c.window
		if done && p.tok.Error() != nil && !logged {
			logged = true
			c.logger.Warn("publish failed; QoS 1 messages are re-sent after reconnecting", "conn", c.idx, "err", p.tok.Error())
		}
		switch {
		case c.qos > 0 && atomic.LoadUint32(&p.msg.acked) == 1:
			c.count(p.msg, time.Now())
		case c.qos > 0 && p.tok != nil:
			c.limbo = append(c.limbo, p.msg)
		case done && p.tok.Error() == nil:
			c.count(p.msg, time.Now())
		default:
			c.unacked++
		}
	}
}

// settle counts the messages left in limbo, once waiting is over.
func (c *conn) settle() {
	now := time.Now()
	for _, m := range c.limbo {
		if atomic.LoadUint32(&m.acked) == 1 {
			c.count(m, now)
		} else {
			c.unacked++
		}
	}
	c.limbo = nil
}

// count records m as published at t and writes its truth line.
func (c *conn) count(m *outMsg, t time.Time) {
	c.published++
	c.faults.add(m.truth.Fault)
	c.lastAck = t
	if c.truth != nil {
		c.line = append(m.truth.AppendJSON(c.line[:0]), '\n')
		c.truth.write(c.line)
	}
}

// waitStores waits until no connection's store holds an unacknowledged message, or drain.
func waitStores(conns []*conn, drain <-chan struct{}) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		settled := true
		for _, c := range conns {
			if c.qos > 0 && c.store.outstanding() > 0 {
				settled = false
				break
			}
		}
		if settled {
			return
		}
		select {
		case <-tick.C:
		case <-drain:
			return
		}
	}
}

// dialTimeout is the TCP connect timeout when paho's options set none.
const dialTimeout = 10 * time.Second

// dialBuffered is a paho OpenConnectionFunc for mqtt:// and tcp:// brokers: paho gets a connection
// that buffers reads and coalesces writes (package netbuf). TLS and websocket URLs keep paho's own
// dialer and connection.
func dialBuffered(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.ConnectTimeout}
	if opts.Dialer != nil {
		d = *opts.Dialer
		d.Timeout = opts.ConnectTimeout
	}
	if d.Timeout == 0 {
		d.Timeout = dialTimeout
	}
	nc, err := d.Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	return netbuf.New(nc), nil
}
