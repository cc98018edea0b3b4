package broker

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/log/logtest"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// message is one publish a test makes.
type message struct {
	topic   string
	payload []byte
	qos     byte
}

func messages(prefix string, n int, qos byte) []message {
	out := make([]message, n)
	for i := range out {
		// Binary, including bytes that are not UTF-8, and an empty payload first: stored untouched.
		p := []byte(fmt.Sprintf(`{"id":"%s-%d","v":%d}`, prefix, i, i))
		if i%7 == 3 {
			p = append(p, 0x00, 0xff, 0x80)
		}
		if i == 0 {
			p = nil
		}
		out[i] = message{topic: fmt.Sprintf("plant/%s/sensor-%d/temp", prefix, i%5), payload: p, qos: qos}
	}
	return out
}

type publisher interface {
	publish(t *testing.T, m message)
}

type pub3 struct{ c mqtt3.Client }

func (p pub3) publish(t *testing.T, m message) {
	tok := p.c.Publish(m.topic, m.qos, false, m.payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", m.topic, tok.Error())
	}
}

type pub5 struct{ c *paho.Client }

func (p pub5) publish(t *testing.T, m message) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.c.Publish(ctx, &paho.Publish{Topic: m.topic, QoS: m.qos, Payload: m.payload}); err != nil {
		t.Fatalf("publish %s: %v", m.topic, err)
	}
}

func newPublisher(t *testing.T, version int, addr, id string) publisher {
	if version == 5 {
		return pub5{connect5(t, addr, paho.ClientConfig{}, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})}
	}
	return pub3{connect3(t, "tcp://"+addr, mqtt3.NewClientOptions().SetClientID(id).SetOrderMatters(true))}
}

// TestIngest publishes with real 3.1.1 and 5 clients and checks every message lands in the log as an
// envelope with the exact topic, payload bytes and QoS, in publish order.
func TestIngest(t *testing.T) {
	cases := []struct {
		name    string
		version int
		qos     []byte // one run of n messages per entry, in this order
		n       int
	}{
		{"3.1.1 QoS 1", 4, []byte{1}, 50},
		{"3.1.1 QoS 0", 4, []byte{0}, 50},
		{"3.1.1 QoS 2", 4, []byte{2}, 10},
		{"5 QoS 1", 5, []byte{1}, 50},
		{"5 QoS 0", 5, []byte{0}, 50},
		{"5 QoS 0 then 1 then 0", 5, []byte{0, 1, 0}, 20},
	}
	for _, mode := range modes {
		for _, c := range cases {
			t.Run(mode.name+"/"+c.name, func(t *testing.T) { testIngest(t, mode.pipeline, c.version, c.qos, c.n) })
		}
	}
}

func testIngest(t *testing.T, pipeline bool, version int, qosRuns []byte, n int) {
	l := memlog.New()
	cl := &logtest.LazyCounter{Appender: l}
	b, reg := startBroker(t, modeConfig(pipeline), cl)
	p := newPublisher(t, version, b.Addr().String(), "ingest")
	var sent []message
	var perQoS [3]int
	before := time.Now().UnixNano()
	for i, q := range qosRuns {
		for _, m := range messages(fmt.Sprint(i), n, q) {
			p.publish(t, m)
			sent = append(sent, m)
			perQoS[q]++
		}
	}
	got := readLog(t, l, len(sent))
	after := time.Now().UnixNano()
	prev := int64(0)
	for i, e := range got {
		m := sent[i]
		if e.Topic != m.topic || !bytes.Equal(e.Payload, m.payload) || e.QoS != m.qos || e.Source != envelope.SourceMQTT {
			t.Fatalf("envelope %d = {topic %q payload %q qos %d source %v}, want {%q %q %d mqtt}", i, e.Topic, e.Payload, e.QoS, e.Source, m.topic, m.payload, m.qos)
		}
		if e.ReceivedAt < before || e.ReceivedAt > after || e.ReceivedAt < prev {
			t.Fatalf("envelope %d received_at %d outside [%d, %d] or before the previous %d", i, e.ReceivedAt, before, after, prev)
		}
		prev = e.ReceivedAt
	}
	for q, n := range perQoS {
		if got := testutil.ToFloat64(b.m.received[q]); got != float64(n) {
			t.Errorf("sluice_broker_messages_received_total{qos=%d} = %v, want %d", q, got, n)
		}
	}
	// QoS 0 publishes are appended lazily (no one waits on them), the others not.
	if got := cl.Lazy.Load(); got != int64(perQoS[0]) {
		t.Errorf("%d lazy appends, want one for each of the %d QoS 0 messages", got, perQoS[0])
	}
	if perQoS[1] > 0 {
		if got := histCount(t, reg, "sluice_broker_append_duration_seconds", "1"); got != uint64(perQoS[1]) {
			t.Errorf("append latency observations for QoS 1 = %d, want %d", got, perQoS[1])
		}
	}
}

// TestIngestManyConnections checks per-connection order with connections publishing at once.
func TestIngestManyConnections(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { testIngestManyConnections(t, mode.pipeline) })
	}
}

func testIngestManyConnections(t *testing.T, pipeline bool) {
	const conns, per = 8, 100
	l := memlog.New()
	b, reg := startBroker(t, modeConfig(pipeline), l)
	var wg sync.WaitGroup
	for c := range conns {
		version := 4 + c%2 // half 3.1.1, half 5
		p := newPublisher(t, version, b.Addr().String(), fmt.Sprintf("conn-%d", c))
		wg.Go(func() {
			for i := range per {
				p.publish(t, message{topic: fmt.Sprintf("c/%d", c), payload: []byte(fmt.Sprint(i)), qos: byte(i % 2)})
			}
		})
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return gauge(t, reg, "sluice_broker_clients_connected") == conns }, "clients_connected != %d", conns)
	wg.Wait()
	got := readLog(t, l, conns*per)
	next := map[string]int{}
	for _, e := range got {
		want := next[e.Topic]
		if string(e.Payload) != fmt.Sprint(want) || e.QoS != byte(want%2) {
			t.Fatalf("topic %s: got payload %q qos %d, want %d qos %d (order per connection lost)", e.Topic, e.Payload, e.QoS, want, want%2)
		}
		next[e.Topic]++
	}
	if len(next) != conns {
		t.Fatalf("%d connections in the log, want %d", len(next), conns)
	}
}

// TestNotIngested checks what must not reach the log: topics outside broker.topics, $SYS, and sluice's
// own messages; all of them still reach subscribers (except $SYS from clients, which mochi drops).
func TestNotIngested(t *testing.T) {
	l := memlog.New()
	cfg := testConfig()
	cfg.Topics = []string{"plant/#", "lab/+/temp"}
	b, _ := startBroker(t, cfg, l)
	addr := b.Addr().String()

	got := make(chan string, 100)
	sub := connect5(t, addr, paho.ClientConfig{OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(r paho.PublishReceived) (bool, error) {
			got <- r.Packet.Topic + "=" + string(r.Packet.Payload)
			return true, nil
		},
	}}, &paho.Connect{ClientID: "sub", CleanStart: true, KeepAlive: 30})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "#", QoS: 1}, {Topic: "$SYS/broker/uptime", QoS: 0}}}); err != nil {
		t.Fatal(err)
	}

	p := newPublisher(t, 5, addr, "pub")
	p.publish(t, message{topic: "plant/a/temp", payload: []byte("in1"), qos: 1})
	p.publish(t, message{topic: "lab/b/temp", payload: []byte("in2"), qos: 1})
	p.publish(t, message{topic: "lab/b/humidity", payload: []byte("out1"), qos: 1})
	p.publish(t, message{topic: "office/x", payload: []byte("out2"), qos: 0})
	if err := b.Publish("alerts/pump-7", []byte("own"), false, 1); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"plant/a/temp=in1": true, "lab/b/temp=in2": true, "lab/b/humidity=out1": true, "office/x=out2": true, "alerts/pump-7=own": true}
	sys := false
	deadline := time.After(10 * time.Second)
	for len(want) > 0 || !sys {
		select {
		case m := <-got:
			if strings.HasPrefix(m, "$SYS/") {
				sys = true
				continue
			}
			if !want[m] {
				t.Fatalf("subscriber got unexpected %q", m)
			}
			delete(want, m)
		case <-deadline:
			t.Fatalf("subscriber still waits for %v ($SYS seen: %v)", want, sys)
		}
	}
	env := readLog(t, l, 2)
	if env[0].Topic != "plant/a/temp" || env[1].Topic != "lab/b/temp" {
		t.Fatalf("log holds %q, %q; want plant/a/temp, lab/b/temp", env[0].Topic, env[1].Topic)
	}
	if got := testutil.ToFloat64(b.m.skipped); got != 2 {
		t.Fatalf("sluice_broker_messages_skipped_total = %v, want 2", got)
	}
}

// TestPersistentSession checks mochi's in-memory sessions: a subscriber with clean session false gets,
// on reconnecting, the QoS 1 messages published while it was away.
func TestPersistentSession(t *testing.T) {
	l := memlog.New()
	b, _ := startBroker(t, testConfig(), l)
	url := "tcp://" + b.Addr().String()
	var mu sync.Mutex
	var got []string
	opts := func() *mqtt3.ClientOptions {
		return mqtt3.NewClientOptions().SetClientID("durable-sub").SetCleanSession(false).SetOrderMatters(true).
			SetDefaultPublishHandler(func(_ mqtt3.Client, m mqtt3.Message) { mu.Lock(); got = append(got, string(m.Payload())); mu.Unlock() })
	}
	sub := connect3(t, url, opts())
	if tok := sub.Subscribe("plant/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	sub.Disconnect(50)

	p := newPublisher(t, 4, b.Addr().String(), "pub")
	for i := range 3 {
		p.publish(t, message{topic: "plant/x", payload: []byte(fmt.Sprint(i)), qos: 1})
	}
	connect3(t, url, opts())
	testkit.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 }, "resumed session did not deliver 3 queued messages")
	mu.Lock()
	defer mu.Unlock()
	// mochi v2.7.9 resends a session's queued messages sorted by creation second (unstable within one
	// second: Inflight.GetAll), so only the set is certain, not the order.
	slices.Sort(got)
	if strings.Join(got, ",") != "0,1,2" {
		t.Fatalf("queued messages = %v, want 0,1,2", got)
	}
	readLog(t, l, 3)
}

func gauge(t testing.TB, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func histCount(t testing.TB, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name, qos string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "qos" && lp.GetValue() == qos {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}
