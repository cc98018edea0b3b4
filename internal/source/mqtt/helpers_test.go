package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	mochipackets "github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-project/sluice/internal/envelope"
	sluicelog "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

var protocols = []string{Protocol311, Protocol5}

// testConfig returns a configuration for broker with fast reconnection, for tests.
func testConfig(broker, clientID, protocol string) Config {
	c := DefaultConfig()
	c.Broker, c.ClientID, c.Protocol = broker, clientID, protocol
	c.Topics = []string{"t/#"}
	c.ReconnectBackoffMin, c.ReconnectBackoffMax = 20*time.Millisecond, 200*time.Millisecond
	c.ConnectTimeout = 5 * time.Second
	if u, err := url.Parse(broker); err == nil && protocol == Protocol5 {
		if _, ok := mochiAddrs.Load(u.Host); ok {
			// mochi v2.7.9's Receive Maximum handling can deadlock (a recursive RLock in
			// Inflight.NextImmediate against a waiting Set) and drops queued messages; 65535 is not sent.
			c.MaxInFlight = math.MaxUint16
		}
	}
	return c
}

// mochiAddrs holds the listener addresses (host:port) of the mochi brokers tests started.
var mochiAddrs sync.Map

// running is a source running in the background of a test.
type running struct {
	*Source
	cancel context.CancelFunc
	done   chan error
}

// startSource starts a source on l and stops it (and checks it returned promptly) when the test ends.
func startSource(t testing.TB, cfg Config, l sluicelog.Appender) *running {
	t.Helper()
	s, err := New(cfg, l, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Source: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it; calling it twice is harmless.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("Run did not return within 15s of cancel")
		return nil
	}
}

func (r *running) waitReady(t testing.TB) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool { return r.Ready() == nil }, "source not ready: %v", r.Ready())
}

func (r *running) acked() int { return int(testutil.ToFloat64(r.m.acked)) }
func (r *running) received() int {
	return int(testutil.ToFloat64(r.m.received[0]) + testutil.ToFloat64(r.m.received[1]))
}
func (r *running) appendErrs() int { return int(testutil.ToFloat64(r.m.appendErrors)) }
func (r *running) reconnects(reason string) int {
	return int(testutil.ToFloat64(r.m.reconnects.WithLabelValues(reason)))
}

// testLogger logs through t (warnings and up), so a failing test shows the source's story.
func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t, slog.LevelWarn) }

// envelopes returns every envelope in l, in offset order.
func envelopes(t testing.TB, l *memlog.Log) []envelope.Envelope {
	t.Helper()
	next := l.Next()
	var out []envelope.Envelope
	if next == 0 {
		return nil
	}
	c, err := l.Consume(fmt.Sprintf("test-%d", time.Now().UnixNano()), startHandler{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for int64(len(out)) < next {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		recs, err := c.Fetch(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			var e envelope.Envelope
			if err := envelope.Decode(r.Value, &e); err != nil {
				t.Fatalf("offset %d: %v", r.Offset, err)
			}
			e.Payload = append([]byte(nil), e.Payload...)
			out = append(out, e)
		}
	}
	return out[:next]
}

type startHandler struct{}

func (startHandler) Assigned(context.Context, int32) (int64, error) { return 0, nil }
func (startHandler) Revoked(context.Context, int32) error           { return nil }

// distinctPayloads counts the distinct payloads in l.
func distinctPayloads(t testing.TB, l *memlog.Log) int {
	seen := map[string]bool{}
	for _, e := range envelopes(t, l) {
		seen[string(e.Payload)] = true
	}
	return len(seen)
}

// payloadSet returns the set of payloads in l.
func payloadSet(t testing.TB, l *memlog.Log) map[string]int {
	seen := map[string]int{}
	for _, e := range envelopes(t, l) {
		seen[string(e.Payload)]++
	}
	return seen
}

// msg is one test message.
type msg struct {
	topic   string
	payload string
}

func messages(prefix string, n int) []msg {
	out := make([]msg, n)
	for i := range out {
		out[i] = msg{topic: fmt.Sprintf("t/%s/sensor-%d", prefix, i%7), payload: fmt.Sprintf(`{"p":%q,"i":%d}`, prefix, i)}
	}
	return out
}

// publisher is a plain MQTT 3.1.1 publisher (paho.mqtt.golang) that reconnects by itself.
type publisher struct {
	c paho.Client
}

func newPublisher(t testing.TB, url, clientID string, tlsc *tls.Config, user, pass string) *publisher {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetProtocolVersion(4).SetUsername(user).SetPassword(pass)
	if tlsc != nil {
		o.SetTLSConfig(tlsc)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{c: c}
}

// publish publishes every message at qos and waits until the broker took each (retrying a message
// whose publication failed, as a device would).
func (p *publisher) publish(t testing.TB, qos byte, ms []msg) {
	t.Helper()
	const window = 200
	toks := make([]paho.Token, 0, window)
	idx := make([]int, 0, window)
	flush := func() {
		for k, tok := range toks {
			for !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				m := ms[idx[k]]
				time.Sleep(20 * time.Millisecond) // the publisher is reconnecting
				tok = p.c.Publish(m.topic, qos, false, m.payload)
			}
		}
		toks, idx = toks[:0], idx[:0]
	}
	for i, m := range ms {
		toks = append(toks, p.c.Publish(m.topic, qos, false, m.payload))
		idx = append(idx, i)
		if len(toks) == window {
			flush()
		}
	}
	flush()
}

// publishFrom publishes ms from conns connections in parallel, ms split between them.
func publishFrom(t testing.TB, url string, conns int, qos byte, ms []msg) {
	t.Helper()
	pubs := make([]*publisher, conns)
	for i := range pubs {
		pubs[i] = newPublisher(t, url, fmt.Sprintf("pub-%d-%d", time.Now().UnixNano(), i), nil, "", "")
	}
	var wg sync.WaitGroup
	for i, p := range pubs {
		part := ms[len(ms)*i/conns : len(ms)*(i+1)/conns]
		wg.Go(func() { p.publish(t, qos, part) })
	}
	wg.Wait()
}

// mochiBroker is an in-process mochi-mqtt broker: the tests that must run everywhere use it.
type mochiBroker struct {
	srv   *mochi.Server
	addr  string
	close func() // idempotent (mochi's Close panics the second time)
}

type mochiOptions struct {
	tls       *tls.Config // TLS on the TCP listener
	wsAddr    string      // also a websocket listener on this address
	wsTLS     bool        // wss (with tls)
	users     map[string]string
	inflight  uint16 // server receive maximum (0 = mochi's default)
	tcpListen string // address for the TCP listener (default 127.0.0.1:0)
}

func startMochi(t testing.TB, o mochiOptions) *mochiBroker {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler), InlineClient: false})
	if o.inflight > 0 {
		srv.Options.Capabilities.ReceiveMaximum = o.inflight
	}
	if err := srv.AddHook(&authHook{users: o.users}, nil); err != nil {
		t.Fatal(err)
	}
	addr := o.tcpListen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr, TLSConfig: o.tls})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if o.wsAddr != "" {
		cfg := listeners.Config{ID: "ws", Address: o.wsAddr}
		if o.wsTLS {
			cfg.TLSConfig = o.tls
		}
		if err := srv.AddListener(listeners.NewWebsocket(cfg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	mochiAddrs.Store(tcp.Address(), true)
	if o.wsAddr != "" {
		mochiAddrs.Store(o.wsAddr, true)
	}
	b := &mochiBroker{srv: srv, addr: tcp.Address(), close: sync.OnceFunc(func() {
		closed := make(chan struct{})
		go func() { _ = srv.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Errorf("mochi's Close hung for 10s; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})}
	if o.wsAddr != "" {
		testkit.WaitListening(t, o.wsAddr, 5*time.Second)
	}
	t.Cleanup(b.close)
	return b
}

// authHook lets in everyone (users nil) or the listed users, and allows every topic. (mochi's own
// hooks/auth package would add gopkg.in/yaml.v3 to go.sum for nothing.)
type authHook struct {
	mochi.HookBase
	users map[string]string
}

func (h *authHook) ID() string { return "test-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk mochipackets.Packet) bool {
	if h.users == nil {
		return true
	}
	p, ok := h.users[string(pk.Connect.Username)]
	return ok && p == string(pk.Connect.Password)
}

func (h *authHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }

func (b *mochiBroker) url() string { return "mqtt://" + b.addr }

// brokerCase names a broker to run a test against.
type brokerCase struct {
	name  string
	start func(t testing.TB) string // returns the broker URL
}

// brokers are the real brokers every core test runs against: the embedded mochi broker (always) and
// a private Mosquitto (skipped where it is not installed).
var brokers = []brokerCase{
	{"mochi", func(t testing.TB) string { return startMochi(t, mochiOptions{}).url() }},
	{"mosquitto", func(t testing.TB) string { return startMosquitto(t).URL }},
}

// startMosquitto starts a private Mosquitto (testkit.StartMosquitto, which keeps it root when run as
// root, so that it can save its sessions for Restart).
func startMosquitto(t testing.TB, extra ...string) *testkit.Mosquitto {
	t.Helper()
	return testkit.StartMosquitto(t, extra...)
}

// heldLog is a log whose appends are not durable until release: it holds AppendAsync's done callbacks
// (the entries stay valid until done, by the log contract).
type heldLog struct {
	inner    *memlog.Log
	mu       sync.Mutex
	held     []heldAppend
	released bool
}

type heldAppend struct {
	entries []sluicelog.Entry
	done    func(error)
}

func (h *heldLog) Append(ctx context.Context, entries ...sluicelog.Entry) error {
	return h.inner.Append(ctx, entries...)
}

func (h *heldLog) AppendAsync(entries []sluicelog.Entry, done func(error)) {
	h.mu.Lock()
	if !h.released {
		h.held = append(h.held, heldAppend{entries, done})
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.inner.AppendAsync(entries, done)
}

// hold holds the appends from now on again, until the next release.
func (h *heldLog) hold() {
	h.mu.Lock()
	h.released = false
	h.mu.Unlock()
}

func (h *heldLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

func (h *heldLog) release() {
	h.mu.Lock()
	held := h.held
	h.held, h.released = nil, true
	h.mu.Unlock()
	for _, a := range held {
		h.inner.AppendAsync(a.entries, a.done)
	}
}

// failingLog fails the first n appends, then appends to inner.
type failingLog struct {
	inner *memlog.Log
	left  atomic.Int64
	fails atomic.Int64
}

var errInjected = errors.New("injected append failure")

func (f *failingLog) Append(ctx context.Context, entries ...sluicelog.Entry) error {
	return f.inner.Append(ctx, entries...)
}

func (f *failingLog) AppendAsync(entries []sluicelog.Entry, done func(error)) {
	if f.left.Add(-1) >= 0 {
		f.fails.Add(1)
		done(errInjected)
		return
	}
	f.inner.AppendAsync(entries, done)
}

// slowLog completes appends after delay, in order, on a goroutine of its own (as a WAL's group commit
// does).
type slowLog struct {
	inner *memlog.Log
	delay time.Duration
	ch    chan heldAppend
	wg    sync.WaitGroup
}

func newSlowLog(t testing.TB, delay time.Duration) *slowLog {
	l := &slowLog{inner: memlog.New(), delay: delay, ch: make(chan heldAppend, 1<<16)}
	l.wg.Go(func() {
		for a := range l.ch {
			time.Sleep(l.delay)
			l.inner.AppendAsync(a.entries, a.done)
		}
	})
	t.Cleanup(func() { close(l.ch); l.wg.Wait() })
	return l
}

func (l *slowLog) Append(ctx context.Context, entries ...sluicelog.Entry) error {
	return l.inner.Append(ctx, entries...)
}

func (l *slowLog) AppendAsync(entries []sluicelog.Entry, done func(error)) {
	l.ch <- heldAppend{entries, done}
}

// proxy is a TCP proxy whose connections a test can cut, as a network failure would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(u, c); u.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, u); c.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) url() string { return "mqtt://" + p.ln.Addr().String() }

// cut closes every connection made so far.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// serverTLS is the broker side of p: its server certificate, and client certificates required.
func serverTLS(p *testkit.PKI) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}
