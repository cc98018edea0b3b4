package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// notWithin reports whether done stays open for d: the check that something has NOT happened yet.
func notWithin(done <-chan struct{}, d time.Duration) bool {
	select {
	case <-done:
		return false
	case <-time.After(d):
		return true
	}
}

// TestPubackAfterDurable holds the log's Append and checks that the publisher's QoS 1 publish does not
// complete while it is held, and completes once it returns.
func TestPubackAfterDurable(t *testing.T) {
	cases := []struct {
		name    string
		publish func(t *testing.T, addr string) (done <-chan struct{}, err func() error)
	}{
		{"3.1.1", func(t *testing.T, addr string) (<-chan struct{}, func() error) {
			c := connect3(t, "tcp://"+addr, mqtt3.NewClientOptions().SetClientID("held3"))
			tok := c.Publish("plant/held", 1, false, []byte("v"))
			return tok.Done(), tok.Error
		}},
		{"5", func(t *testing.T, addr string) (<-chan struct{}, func() error) {
			c := connect5(t, addr, paho.ClientConfig{}, &paho.Connect{ClientID: "held5", CleanStart: true, KeepAlive: 30})
			done := make(chan struct{})
			var err error
			go func() {
				defer close(done)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err = c.Publish(ctx, &paho.Publish{Topic: "plant/held", QoS: 1, Payload: []byte("v")})
			}()
			return done, func() error { return err }
		}},
	}
	for _, mode := range modes {
		for _, c := range cases {
			t.Run(mode.name+"/"+c.name, func(t *testing.T) {
				l := newGatedLog()
				b, _ := startBroker(t, modeConfig(mode.pipeline), l)
				done, errf := c.publish(t, b.Addr().String())
				testkit.Eventually(t, 10*time.Second, func() bool { return l.waiting.Load() == 1 }, "the append never reached the log")
				if !notWithin(done, 300*time.Millisecond) {
					t.Fatalf("publish completed while its append was held (err %v): PUBACK before durable", errf())
				}
				if n := l.Next(); n != 0 {
					t.Fatalf("log holds %d entries before release", n)
				}
				l.release()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("publish did not complete after the append returned")
				}
				if err := errf(); err != nil {
					t.Fatalf("publish: %v", err)
				}
				if got := readLog(t, l.Log, 1); string(got[0].Payload) != "v" {
					t.Fatalf("payload %q", got[0].Payload)
				}
			})
		}
	}
}

// TestAppendFailure3 makes the log fail under a bare 3.1.1 client with a persistent session: each
// attempt gets its connection closed and not one byte of PUBACK; the session survives (CONNACK says
// session present), and the resend after the log recovers is acknowledged and lands exactly once.
func TestAppendFailure3(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { testAppendFailure3(t, mode.pipeline) })
	}
}

func testAppendFailure3(t *testing.T, pipeline bool) {
	l := &failingLog{Log: memlog.New()}
	b, _ := startBroker(t, modeConfig(pipeline), l)
	addr := b.Addr().String()
	l.fail(errDiskFull)
	for attempt := range 3 {
		c, present := dialRaw3(t, addr, "flaky3", false)
		if present != (attempt > 0) {
			t.Fatalf("attempt %d: session present = %v", attempt, present)
		}
		if err := c.writePublish(7, "plant/p", []byte("must land"), 1, attempt > 0); err != nil {
			t.Fatal(err)
		}
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		typ, body, err := c.read(10 * time.Second)
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("attempt %d: read type %d body %v err %v; want the connection closed with nothing sent", attempt, typ, body, err)
		}
	}
	if n, calls := l.Next(), l.calls.Load(); n != 0 || calls != 3 {
		t.Fatalf("log holds %d entries after %d failed appends; want 0 after 3", n, calls)
	}
	if e := testutil.ToFloat64(b.m.appendErrors[1]); e != 3 {
		t.Fatalf("sluice_broker_append_errors_total{qos=1} = %v, want 3", e)
	}
	l.recover()
	c, present := dialRaw3(t, addr, "flaky3", false)
	if !present {
		t.Fatal("session lost")
	}
	if err := c.writePublish(7, "plant/p", []byte("must land"), 1, true); err != nil {
		t.Fatal(err)
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	if id, err := c.readPuback(10 * time.Second); err != nil || id != 7 {
		t.Fatalf("PUBACK id %d err %v, want 7", id, err)
	}
	got := readLog(t, l.Log, 1)
	if got[0].Topic != "plant/p" || string(got[0].Payload) != "must land" || got[0].QoS != 1 {
		t.Fatalf("envelope %+v", got[0])
	}
}

// TestAppendFailurePaho3 runs the same with paho.mqtt.golang (clean session false, auto reconnect): the
// library resends from its store on every reconnect, and the message lands once after recovery. (Its
// token is no evidence of a PUBACK: on resend paho completes the original token without error.)
func TestAppendFailurePaho3(t *testing.T) {
	l := &failingLog{Log: memlog.New()}
	b, _ := startBroker(t, testConfig(), l)
	var lost atomic.Int32
	c := connect3(t, "tcp://"+b.Addr().String(), mqtt3.NewClientOptions().SetClientID("flaky-paho3").
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(100*time.Millisecond).
		SetConnectionLostHandler(func(mqtt3.Client, error) { lost.Add(1) }))
	l.fail(errDiskFull)
	c.Publish("plant/p", 1, false, []byte("must land"))
	testkit.Eventually(t, 20*time.Second, func() bool { return l.calls.Load() >= 3 && lost.Load() >= 2 },
		"want >= 3 failed appends (the publish and its resends) and >= 2 lost connections")
	if n := l.Next(); n != 0 {
		t.Fatalf("log holds %d entries", n)
	}
	l.recover()
	got := readLog(t, l.Log, 1)
	if got[0].Topic != "plant/p" || string(got[0].Payload) != "must land" || got[0].QoS != 1 {
		t.Fatalf("envelope %+v", got[0])
	}
}

// TestAppendFailure5 does the same for an MQTT 5 publisher (autopaho, session expiry 60s): it gets a
// DISCONNECT with reason 0x89 instead of a PUBACK, its Publish call keeps waiting across reconnects, and
// it returns nil only once a resend after recovery is durable.
func TestAppendFailure5(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { testAppendFailure5(t, mode.pipeline) })
	}
}

func testAppendFailure5(t *testing.T, pipeline bool) {
	l := &failingLog{Log: memlog.New()}
	b, _ := startBroker(t, modeConfig(pipeline), l)
	u, _ := url.Parse("mqtt://" + b.Addr().String())
	var reasons atomic.Value
	reasons.Store("")
	var ups atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, SessionExpiryInterval: 60,
		ReconnectBackoff: func(int) time.Duration { return 50 * time.Millisecond },
		OnConnectionUp:   func(*autopaho.ConnectionManager, *paho.Connack) { ups.Add(1) },
		ClientConfig: paho.ClientConfig{ClientID: "flaky5", OnServerDisconnect: func(d *paho.Disconnect) {
			reasons.Store(reasons.Load().(string) + fmt.Sprintf("0x%x ", d.ReasonCode))
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = cm.Disconnect(dctx)
	}()
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	l.fail(errDiskFull)
	published := make(chan error, 1)
	go func() {
		pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
		defer pcancel()
		_, err := cm.Publish(pctx, &paho.Publish{Topic: "plant/p5", QoS: 1, Payload: []byte("must land")})
		published <- err
	}()
	testkit.Eventually(t, 10*time.Second, func() bool { return reasons.Load().(string) != "" && l.calls.Load() >= 2 },
		"no DISCONNECT from the broker and resend after reconnecting")
	if r := reasons.Load().(string); r[:4] != "0x89" {
		t.Fatalf("DISCONNECT reason codes %q, want 0x89 (server busy)", r)
	}
	select {
	case err := <-published:
		t.Fatalf("publish returned (%v) although its append failed", err)
	default: // still waiting for its PUBACK, across reconnects
	}
	if n := l.Next(); n != 0 {
		t.Fatalf("log holds %d entries", n)
	}
	l.recover()
	got := readLog(t, l.Log, 1)
	if got[0].Topic != "plant/p5" || string(got[0].Payload) != "must land" || got[0].QoS != 1 {
		t.Fatalf("envelope %+v", got[0])
	}
	if ups.Load() < 2 {
		t.Fatalf("connection came up %d times, want a reconnect", ups.Load())
	}
	select { // autopaho's session resent it; the PUBACK of the resend completes the original call
	case err := <-published:
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publish call never returned")
	}
}

// TestQoS0AppendFailure: a QoS 0 failure is counted, the client stays connected.
func TestQoS0AppendFailure(t *testing.T) {
	l := &failingLog{Log: memlog.New()}
	b, reg := startBroker(t, testConfig(), l)
	var lost atomic.Int32
	c := connect3(t, "tcp://"+b.Addr().String(), mqtt3.NewClientOptions().SetClientID("q0").
		SetConnectionLostHandler(func(mqtt3.Client, error) { lost.Add(1) }))
	l.fail(errDiskFull)
	for range 5 {
		if tok := c.Publish("plant/q0", 0, false, []byte("x")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return testutil.ToFloat64(b.m.appendErrors[0]) == 5 }, "sluice_broker_append_errors_total{qos=0} did not reach 5")
	l.recover()
	if tok := c.Publish("plant/q0", 1, false, []byte("after")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if got := readLog(t, l.Log, 1); string(got[0].Payload) != "after" {
		t.Fatalf("payload %q", got[0].Payload)
	}
	if lost.Load() != 0 || gauge(t, reg, "sluice_broker_clients_connected") != 1 {
		t.Fatalf("QoS 0 failure disconnected the client (lost %d)", lost.Load())
	}
}

// TestCloseWaitsForAppend: Close returns only after an append in flight has returned, and a connection
// that never sent CONNECT does not hold it.
func TestCloseWaitsForAppend(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { testCloseWaitsForAppend(t, mode.pipeline) })
	}
}

func testCloseWaitsForAppend(t *testing.T, pipeline bool) {
	l := newGatedLog()
	logger := testLogger(t)
	b, err := New(modeConfig(pipeline), l, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", b.Addr().String()) // connected, silent
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	c := connect3(t, "tcp://"+b.Addr().String(), mqtt3.NewClientOptions().SetClientID("closing").SetAutoReconnect(false))
	tok := c.Publish("plant/c", 1, false, []byte("in flight"))
	testkit.Eventually(t, 10*time.Second, func() bool { return l.waiting.Load() == 1 }, "append never reached the log")
	closed := make(chan struct{})
	go func() { _ = b.Close(); close(closed) }()
	if !notWithin(closed, 300*time.Millisecond) {
		t.Fatal("Close returned while an append was in flight")
	}
	if err := b.Ready(); err != ErrClosed {
		t.Fatalf("Ready during Close = %v, want ErrClosed", err)
	}
	l.release()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the append did")
	}
	// The append completed, so the message is in the log; the client lost its connection first, so
	// it got no PUBACK (and would resend: a duplicate the pipeline removes).
	if got := readLog(t, l.Log, 1); string(got[0].Payload) != "in flight" {
		t.Fatalf("payload %q", got[0].Payload)
	}
	if tok.WaitTimeout(time.Second) && tok.Error() == nil {
		t.Fatal("publisher got a PUBACK after its connection was closed")
	}
}

// TestReady covers Ready across the broker's life.
func TestReady(t *testing.T) {
	b, err := New(testConfig(), memlog.New(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err != ErrNotStarted {
		t.Fatalf("before Start: %v", err)
	}
	if b.Addr() != nil {
		t.Fatalf("Addr before Start = %v", b.Addr())
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	if err := b.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Publish("x", nil, false, 0); err != ErrClosed {
		t.Fatalf("Publish after Close = %v", err)
	}
}

var _ log.Appender = (*gatedLog)(nil)
