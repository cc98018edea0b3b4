package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-project/sluice/internal/testkit"
)

// TestPipelineOneConnection sends 10 QoS 1 messages on one connection without waiting. Pipelined, all
// 10 wait for the log at once (sync: one at a time); either way no PUBACK comes before the log returns,
// the PUBACKs come in publish order, and a subscriber gets the messages in order.
func TestPipelineOneConnection(t *testing.T) {
	const n = 10
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			l := newGatedLog()
			b, _ := startBroker(t, modeConfig(mode.pipeline), l)
			got := make(chan string, n)
			sub := connect3(t, "tcp://"+b.Addr().String(), mqtt3.NewClientOptions().SetClientID("sub").SetOrderMatters(true))
			if tok := sub.Subscribe("plant/#", 1, func(_ mqtt3.Client, m mqtt3.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			c, _ := dialRaw3(t, b.Addr().String(), "gateway", true)
			c.publishSeq(t, "plant/gw", 1, n)
			want := int32(1)
			if mode.pipeline {
				want = n
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return l.waiting.Load() == want }, "appends held at the gate never reached %d", want)
			if typ, body, err := c.read(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
				t.Fatalf("broker sent type %d %v (err %v) while every append was held", typ, body, err)
			}
			if l.waiting.Load() != want {
				t.Fatalf("%d appends held, want %d", l.waiting.Load(), want)
			}
			l.release()
			c.expectPubacks(t, 1, n)
			env := readLog(t, l.Log, n)
			for i := 1; i <= n; i++ {
				if string(env[i-1].Payload) != fmt.Sprint(i) {
					t.Fatalf("log entry %d = %q", i-1, env[i-1].Payload)
				}
				select {
				case m := <-got:
					if m != fmt.Sprint(i) {
						t.Fatalf("subscriber got %q, want %d", m, i)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("subscriber did not get message %d", i)
				}
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPipelineTopicAlias: a message acknowledged late must not re-apply its topic alias over a mapping
// the client made since (MQTT 5 topic aliases).
func TestPipelineTopicAlias(t *testing.T) {
	l := newGatedLog()
	b, _ := startBroker(t, modeConfig(true), l)
	forwarded := make(chan string, 10)
	sub := connect3(t, "tcp://"+b.Addr().String(), mqtt3.NewClientOptions().SetClientID("sub").SetOrderMatters(true))
	if tok := sub.Subscribe("#", 1, func(_ mqtt3.Client, m mqtt3.Message) { forwarded <- m.Topic() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c := connect5(t, b.Addr().String(), paho.ClientConfig{}, &paho.Connect{ClientID: "alias", CleanStart: true, KeepAlive: 30})
	alias := uint16(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub := func(topic string, method paho.PublishMethod) {
		t.Helper()
		p := &paho.Publish{QoS: 1, Topic: topic, Payload: []byte(topic), Properties: &paho.PublishProperties{TopicAlias: &alias}}
		if _, err := c.PublishWithOptions(ctx, p, paho.PublishOptions{Method: method}); err != nil {
			t.Fatal(err)
		}
	}
	pub("a", paho.PublishMethod_AsyncSend) // alias 1 = a
	pub("b", paho.PublishMethod_AsyncSend) // alias 1 = b
	testkit.Eventually(t, 10*time.Second, func() bool { return l.waiting.Load() == 2 }, "2 appends not held")
	l.releaseOne() // "a" is durable: acknowledged and routed (re-injected) while "b" still waits
	select {
	case topic := <-forwarded:
		if topic != "a" {
			t.Fatalf("forwarded %q first", topic)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not forwarded")
	}
	pub("", paho.PublishMethod_AsyncSend) // alias 1: must be b, the client's latest mapping
	testkit.Eventually(t, 10*time.Second, func() bool { return l.waiting.Load() == 2 }, "the third append not held")
	l.release()
	env := readLog(t, l.Log, 3)
	for i, want := range []string{"a", "b", "b"} {
		if env[i].Topic != want {
			t.Fatalf("entry %d topic %q, want %q (all: %q %q %q)", i, env[i].Topic, want, env[0].Topic, env[1].Topic, env[2].Topic)
		}
	}
}

// TestPipelineWindow: past receive_maximum unacknowledged messages the connection waits for the log,
// and past append_timeout it is disconnected without an acknowledgement.
func TestPipelineWindow(t *testing.T) {
	l := newGatedLog()
	cfg := modeConfig(true)
	cfg.ReceiveMaximum, cfg.AppendTimeout = 2, 300*time.Millisecond
	b, _ := startBroker(t, cfg, l)
	c, _ := dialRaw3(t, b.Addr().String(), "greedy", true)
	c.publishSeq(t, "plant/w", 1, 3)
	start := time.Now()
	typ, body, err := c.read(10 * time.Second)
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read type %d %v err %v, want the connection closed", typ, body, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("disconnected after %s, before append_timeout", d)
	}
	if l.waiting.Load() != 2 || testutil.ToFloat64(b.m.appendErrors[1]) != 1 {
		t.Fatalf("%d appends held (want 2), %v append errors (want 1)", l.waiting.Load(), testutil.ToFloat64(b.m.appendErrors[1]))
	}
	l.release()
	readLog(t, l.Log, 2) // durable, unacknowledged: the client resends them
}

// TestPipelineCorkedPubacks: the PUBACKs of messages made durable together go out gathered (corked)
// at most corkBatch at a time. 600 messages held at the log, then released at once: every PUBACK
// arrives, in publish order, none left behind in a gathered write; then one more message is
// acknowledged on its own.
func TestPipelineCorkedPubacks(t *testing.T) {
	n := 2*corkBatch + 88
	l := newGatedLog()
	cfg := modeConfig(true)
	cfg.ReceiveMaximum = n + 1
	b, _ := startBroker(t, cfg, l)
	c, _ := dialRaw3(t, b.Addr().String(), "gateway", true)
	c.publishSeq(t, "plant/gw", 1, n)
	testkit.Eventually(t, 10*time.Second, func() bool { return l.waiting.Load() == int32(n) }, "appends held at the gate never reached %d", n)
	l.release()
	c.expectPubacks(t, 1, n)
	c.publishSeq(t, "plant/gw", n+1, n+1) // the message after the batch, acknowledged on its own
	c.expectPubacks(t, n+1, n+1)
}
