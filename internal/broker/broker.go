package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-project/sluice/internal/log"
)

// Errors Ready and Publish return.
var (
	ErrNotStarted = errors.New("embedded MQTT broker: not started")
	ErrClosed     = errors.New("embedded MQTT broker: closed")
)

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// Broker is the embedded MQTT broker: mochi with sluice's ingest hook, listeners and metrics.
type Broker struct {
	cfg    Config
	log    log.Appender
	lazy   func([]log.Entry, func(error)) // log.LazyOf(log): how QoS 0 publishes are appended
	logger *slog.Logger
	m      *metrics
	srv    *mqtt.Server
	topics topicSet
	tls    *tls.Config
	user   []byte
	pass   []byte

	mu       sync.Mutex // guards state and the addresses
	state    int
	tcpAddr  net.Addr
	tlsAddr  net.Addr
	wsAddr   net.Addr
	lns      []*trackedListener // bound by Start
	closing  atomic.Bool        // set first thing in Close: new connections are refused
	async    asyncTracker       // QoS 0 appends whose done has not run yet
	pending  *pending           // broker.pending_bytes: memory of messages read and not done with
	bufs     sync.Pool          // *appendBuf
	lastWarn atomic.Int64       // unix nanos of the last QoS 0 append failure logged
	lastDrop atomic.Int64       // unix nanos of the last subscriber drop logged
	ackers   asyncTracker       // pipelined: acker goroutines running
	pipesMu  sync.Mutex
	pipes    map[*mqtt.Client]*pipe // pipelined: connections with a read goroutine
}

// New checks cfg, loads the TLS files and builds the broker; nothing listens until Start. l receives
// every ingested message; reg (nil: none) receives the sluice_broker_* metrics.
func New(cfg Config, l log.Appender, logger *slog.Logger, reg prometheus.Registerer) (*Broker, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: %w", err)
	}
	if l == nil {
		return nil, errors.New("embedded MQTT broker: no log to append to")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{cfg: cfg, log: l, logger: logger, topics: newTopicSet(cfg.Topics), user: []byte(cfg.Username), pass: []byte(cfg.Password),
		pipes: map[*mqtt.Client]*pipe{}, pending: newPending(int64(cfg.PendingBytes))}
	b.lazy = log.LazyOf(l)
	if cfg.TLS.Listen != "" {
		var err error
		if b.tls, err = loadTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(cfg.MaxMessageSize) + packetHeadroom
	caps.ReceiveMaximum = uint16(cfg.ReceiveMaximum)
	caps.MaximumInflight = uint16(cfg.SubscriberQueue)
	caps.MaximumClientWritesPending = int32(cfg.SubscriberQueue)
	caps.MaximumSessionExpiryInterval = uint32(cfg.SessionExpiry / time.Second)
	caps.MaximumClients = math.MaxInt64
	if cfg.MaxClients > 0 {
		caps.MaximumClients = int64(cfg.MaxClients)
	}
	b.srv = mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       newMochiLogger(logger, b.subscriberDropped),
		InlineClient: true, // Publish: sluice's own messages, never ingested
	})
	m, err := newMetrics(reg, b.srv.Info, b.pending)
	if err != nil {
		return nil, err
	}
	b.m = m
	if err := b.srv.AddHook(&ingestHook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: add hook: %w", err)
	}
	return b, nil
}

func loadTLS(c TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: load broker.tls.cert_file and key_file: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("embedded MQTT broker: read broker.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("embedded MQTT broker: broker.tls.client_ca_file %s holds no PEM certificate", c.ClientCAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Start binds every configured listener and starts serving. It returns once all are bound, or the first
// bind error (an *AddrInUseError when an address is taken) with nothing left bound. It is called once;
// after an error the broker is closed.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateStarted:
		return errors.New("embedded MQTT broker: already started")
	case stateClosed:
		return ErrClosed
	}
	var bound []net.Listener
	fail := func(err error) error { // a broker that failed to start is closed: mochi keeps what was added
		for _, ln := range bound {
			ln.Close()
		}
		b.state = stateClosed
		b.tcpAddr, b.tlsAddr, b.wsAddr, b.lns = nil, nil, nil, nil
		return err
	}
	type spec struct {
		key, addr string
		out       *net.Addr
		add       func(net.Listener) listeners.Listener
	}
	specs := []spec{
		{"listen", b.cfg.Listen, &b.tcpAddr, func(ln net.Listener) listeners.Listener { return listeners.NewNet("tcp", corkListener{ln}) }},
		{"tls.listen", b.cfg.TLS.Listen, &b.tlsAddr, func(ln net.Listener) listeners.Listener {
			return listeners.NewNet("tls", corkListener{tls.NewListener(ln, b.tls)})
		}},
		{"websocket_listen", b.cfg.WebsocketListen, &b.wsAddr, func(ln net.Listener) listeners.Listener { return newWSListener("ws", ln) }},
	}
	var added []listeners.Listener
	for _, s := range specs {
		if s.addr == "" {
			continue
		}
		ln, err := listen(s.key, s.addr)
		if err != nil {
			return fail(err)
		}
		bound = append(bound, ln)
		b.lns = append(b.lns, ln)
		*s.out = ln.Addr()
		added = append(added, s.add(ln))
	}
	if len(added) == 0 {
		return fail(errors.New("embedded MQTT broker: no listener configured; set broker.listen, broker.tls.listen or broker.websocket_listen"))
	}
	for _, l := range added {
		if err := b.srv.AddListener(l); err != nil {
			return fail(fmt.Errorf("embedded MQTT broker: add listener %s: %w", l.ID(), err))
		}
	}
	if err := b.srv.Serve(); err != nil {
		return fail(fmt.Errorf("embedded MQTT broker: serve: %w", err))
	}
	b.state = stateStarted
	attrs := []any{}
	for _, a := range []struct {
		k string
		v net.Addr
	}{{"tcp", b.tcpAddr}, {"tls", b.tlsAddr}, {"websocket", b.wsAddr}} {
		if a.v != nil {
			attrs = append(attrs, a.k, a.v.String())
			if b.cfg.Username == "" && !loopback(a.v) {
				b.logger.Warn("embedded MQTT broker accepts anonymous clients on a non-loopback address; set broker.username and broker.password", "listener", a.k, "addr", a.v.String())
			}
		}
	}
	b.logger.Info("embedded MQTT broker listening", attrs...)
	return nil
}

func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Ready returns nil while the broker is listening, else why not.
func (b *Broker) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateNew:
		return ErrNotStarted
	case stateClosed:
		return ErrClosed
	}
	return nil
}

// Addr is the plain TCP listener's address (port 0 resolved) after Start; nil when disabled or before.
func (b *Broker) Addr() net.Addr { b.mu.Lock(); defer b.mu.Unlock(); return b.tcpAddr }

// TLSAddr is the TLS listener's address after Start; nil when disabled or before.
func (b *Broker) TLSAddr() net.Addr { b.mu.Lock(); defer b.mu.Unlock(); return b.tlsAddr }

// WebsocketAddr is the websocket listener's address after Start; nil when disabled or before.
func (b *Broker) WebsocketAddr() net.Addr { b.mu.Lock(); defer b.mu.Unlock(); return b.wsAddr }

// Publish sends a message from sluice itself (an alert, say) to the broker's subscribers. It is not
// appended to the log. QoS applies to delivery to subscribers.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if err := b.Ready(); err != nil {
		return err
	}
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("embedded MQTT broker: publish %s: %w", topic, err)
	}
	return nil
}

// Close stops accepting connections, disconnects every client, waits for appends in flight (a QoS 1
// publisher whose message became durable while it was being disconnected gets no PUBACK and resends
// it: a duplicate, which the pipeline removes), and stops. It is safe to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	state := b.state
	b.state = stateClosed
	b.mu.Unlock()
	if state == stateClosed {
		return nil
	}
	b.closing.Store(true)
	if state == stateStarted {
		// Closes each listener and its clients and waits for every connection's goroutine, and with them
		// for every synchronous append (each is bounded by append_timeout).
		if err := b.srv.Close(); err != nil {
			return fmt.Errorf("embedded MQTT broker: close: %w", err)
		}
	}
	b.async.closeAndWait()  // QoS 0 and pipelined: the log calls done exactly once, whatever happens
	b.ackers.closeAndWait() // pipelined: acknowledging what became durable (its clients are gone)
	b.logger.Debug("embedded MQTT broker stopped")
	return nil
}

// asyncTracker counts appends whose done callback has not run, and lets Close wait for them. Unlike a
// WaitGroup it refuses new work once closed, so a straggling connection cannot add after the wait.
type asyncTracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (t *asyncTracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *asyncTracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.zero != nil {
		close(t.zero)
		t.zero = nil
	}
}

func (t *asyncTracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	if t.n == 0 {
		t.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	t.zero = ch
	t.mu.Unlock()
	<-ch
}
