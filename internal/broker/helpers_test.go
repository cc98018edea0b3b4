package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs to t, debug and up, until the test's cleanups have run.
func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t, slog.LevelDebug) }

// testConfig is DefaultConfig on a free port.
func testConfig() Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	return c
}

// startBroker starts a broker on l with cfg and closes it when the test ends.
func startBroker(t testing.TB, cfg Config, l log.Appender) (*Broker, *prometheus.Registry) {
	t.Helper()
	logger := testLogger(t)
	reg := prometheus.NewRegistry()
	b, err := New(cfg, l, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b, reg
}

// readLog returns the log's envelopes once it holds want of them, failing after a deadline or if it
// holds more.
func readLog(t testing.TB, l *memlog.Log, want int) []envelope.Envelope {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool { return l.Next() >= int64(want) }, "log holds fewer than %d envelopes", want)
	if n := l.Next(); n != int64(want) {
		t.Fatalf("log holds %d envelopes, want %d", n, want)
	}
	c, err := l.Consume(fmt.Sprintf("test-%d", time.Now().UnixNano()), fromStart{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var out []envelope.Envelope
	for len(out) < want {
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
			e.Payload = bytes.Clone(e.Payload)
			out = append(out, e)
		}
	}
	return out
}

type fromStart struct{}

func (fromStart) Assigned(context.Context, int32) (int64, error) { return 0, nil }
func (fromStart) Revoked(context.Context, int32) error           { return nil }

// modes are the broker's two ways of waiting for the log; durability tests run under both.
var modes = []struct {
	name     string
	pipeline bool
}{{"sync", false}, {"pipelined", true}}

// modeConfig is testConfig in a mode.
func modeConfig(pipeline bool) Config {
	c := testConfig()
	c.Pipeline = pipeline
	return c
}

// gatedLog is a fault injector around memlog: while closed, Append blocks (until the gate opens or ctx
// ends) and AppendAsync queues; opening it appends the queue in order.
type gatedLog struct {
	*memlog.Log
	mu      sync.Mutex
	open    chan struct{}
	opened  bool
	queued  []gcReq
	waiting atomic.Int32 // appends held at the gate
}

func newGatedLog() *gatedLog { return &gatedLog{Log: memlog.New(), open: make(chan struct{})} }

func (g *gatedLog) AppendAsync(es []log.Entry, done func(error)) {
	g.mu.Lock()
	if !g.opened {
		g.queued = append(g.queued, gcReq{entries: es, done: done})
		g.waiting.Add(1)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.Log.AppendAsync(es, done)
}

func (g *gatedLog) Append(ctx context.Context, es ...log.Entry) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Log.Append(ctx, es...)
}

// releaseOne appends the oldest queued AppendAsync and keeps the gate closed.
func (g *gatedLog) releaseOne() {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.queued[0]
	g.queued = g.queued[1:]
	g.waiting.Add(-1)
	g.Log.AppendAsync(r.entries, r.done)
}

func (g *gatedLog) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
	g.opened = true
	for _, r := range g.queued {
		g.waiting.Add(-1)
		g.Log.AppendAsync(r.entries, r.done)
	}
	g.queued = nil
}

// failingLog is a fault injector around memlog: while failing, every append returns err.
type failingLog struct {
	*memlog.Log
	err   atomic.Pointer[error]
	calls atomic.Int32 // failed appends
}

func (f *failingLog) fail(err error) { f.err.Store(&err) }
func (f *failingLog) recover()       { f.err.Store(nil) }

func (f *failingLog) Append(ctx context.Context, es ...log.Entry) error {
	if e := f.err.Load(); e != nil {
		f.calls.Add(1)
		return *e
	}
	return f.Log.Append(ctx, es...)
}

func (f *failingLog) AppendAsync(es []log.Entry, done func(error)) {
	if e := f.err.Load(); e != nil {
		f.calls.Add(1)
		done(*e)
		return
	}
	f.Log.AppendAsync(es, done)
}

var errDiskFull = errors.New("no space left on device")

// connect3 connects an MQTT 3.1.1 client (paho.mqtt.golang) and disconnects it when the test ends.
func connect3(t testing.TB, url string, opts *mqtt3.ClientOptions) mqtt3.Client {
	t.Helper()
	opts.AddBroker(url)
	c := mqtt3.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// connect5 connects an MQTT 5 client (paho.golang) over TCP and disconnects it when the test ends.
func connect5(t testing.TB, addr string, cfg paho.ClientConfig, cp *paho.Connect) *paho.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Conn = conn
	c := paho.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %s: %v (connack %+v)", addr, err, ca)
	}
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{})
		waitDone(t, c)
	})
	return c
}

// waitDone waits for a paho.golang client's goroutines to end.
func waitDone(t testing.TB, c *paho.Client) {
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Errorf("paho client did not stop")
	}
}
