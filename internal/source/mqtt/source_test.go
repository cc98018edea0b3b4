package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/log/logtest"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func hostOf(t testing.TB, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestIngest sends messages from a real publisher through a real broker and checks that each lands in
// the log exactly once, with its topic and payload untouched and a correct envelope, and that every
// QoS 1 message was acknowledged.
func TestIngest(t *testing.T) {
	const n = 500
	for _, b := range brokers {
		for _, proto := range protocols {
			for _, qos := range []int{1, 0} {
				t.Run(fmt.Sprintf("%s/v%s/qos%d", b.name, proto, qos), func(t *testing.T) {
					url := b.start(t)
					l := memlog.New()
					cl := &logtest.LazyCounter{Appender: l}
					cfg := testConfig(url, "sluice-ingest", proto)
					cfg.QoS = qos
					r := startSource(t, cfg, cl)
					r.waitReady(t)
					ms := messages("ingest", n)
					before := time.Now().UnixNano()
					newPublisher(t, url, "pub-ingest", nil, "", "").publish(t, 1, ms)
					testkit.Eventually(t, 20*time.Second, func() bool { return l.Next() >= n }, "log holds %d of %d messages", l.Next(), n)
					after := time.Now().UnixNano()
					wantAcked := 0
					if qos == 1 {
						wantAcked = n
					}
					testkit.Eventually(t, 5*time.Second, func() bool { return r.acked() == wantAcked }, "acked %d, want %d", r.acked(), wantAcked)

					envs := envelopes(t, l)
					if len(envs) != n {
						t.Fatalf("log holds %d envelopes, want exactly %d", len(envs), n)
					}
					for i, e := range envs {
						if e.Topic != ms[i].topic || string(e.Payload) != ms[i].payload {
							t.Fatalf("envelope %d: topic %q payload %q, want %q %q", i, e.Topic, e.Payload, ms[i].topic, ms[i].payload)
						}
						if e.Source != envelope.SourceMQTT || int(e.QoS) != qos || e.ReceivedAt < before || e.ReceivedAt > after {
							t.Fatalf("envelope %d: source %v qos %d received_at %d, want mqtt, %d, within [%d, %d]", i, e.Source, e.QoS, e.ReceivedAt, qos, before, after)
						}
					}
					if got := r.received(); got != n {
						t.Fatalf("received metric %d, want %d", got, n)
					}
					// QoS 0 messages are appended lazily (no one waits on them), QoS 1 ones not.
					wantLazy := n
					if qos == 1 {
						wantLazy = 0
					}
					if lazy, async := cl.Lazy.Load(), cl.Async.Load(); lazy != int64(wantLazy) || async != int64(n-wantLazy) {
						t.Fatalf("%d lazy and %d other appends, want %d and %d", lazy, async, wantLazy, n-wantLazy)
					}
					if err := r.stop(t); !errors.Is(err, context.Canceled) {
						t.Fatalf("Run returned %v, want context.Canceled", err)
					}
					if !errors.Is(r.Ready(), ErrStopped) {
						t.Fatalf("Ready after Run = %v, want ErrStopped", r.Ready())
					}
				})
			}
		}
	}
}

// TestAckOnlyAfterDurable holds every append (not durable), cuts the network, and starts a new source
// with the same client id: the broker must redeliver every message, which it does only if none was
// acknowledged before its append was durable.
func TestAckOnlyAfterDurable(t *testing.T) {
	const n = 200
	for _, b := range brokers {
		for _, proto := range protocols {
			t.Run(b.name+"/v"+proto, func(t *testing.T) {
				url := b.start(t)
				px := startProxy(t, hostOf(t, url))
				held := &heldLog{inner: memlog.New()}
				cfg := testConfig(px.url(), "sluice-held", proto)
				r1 := startSource(t, cfg, held)
				r1.waitReady(t)
				ms := messages("held", n)
				newPublisher(t, url, "pub-held", nil, "", "").publish(t, 1, ms)
				// Mosquitto lets 20 be in flight (max_inflight_messages); mochi sends them all.
				testkit.Eventually(t, 10*time.Second, func() bool { return held.count() >= 20 }, "only %d messages reached the log", held.count())
				if got := r1.acked(); got != 0 {
					t.Fatalf("%d messages acknowledged before their append was durable", got)
				}

				px.cut()
				testkit.Eventually(t, 10*time.Second, func() bool { return r1.Ready() != nil }, "source still ready after its connection was cut")
				r1.cancel() // it waits for the held appends; it must not reconnect meanwhile

				l2 := memlog.New()
				cfg.Broker = url
				r2 := startSource(t, cfg, l2)
				testkit.Eventually(t, 20*time.Second, func() bool { return distinctPayloads(t, l2) == n },
					"after restart the log holds %d distinct of %d messages", distinctPayloads(t, l2), n)

				heldN := held.count()
				held.release()
				if err := r1.stop(t); !errors.Is(err, context.Canceled) {
					t.Fatalf("first source's Run returned %v, want context.Canceled", err)
				}
				if got := r1.acked(); got != 0 {
					t.Fatalf("first source acknowledged %d messages after its connection was gone", got)
				}
				if got := held.inner.Next(); got != int64(heldN) {
					t.Fatalf("released log holds %d entries, want the %d held", got, heldN)
				}
				testkit.Eventually(t, 5*time.Second, func() bool { return r2.acked() >= n },
					"second source acknowledged %d messages, want at least %d", r2.acked(), n)
			})
		}
	}
}

// TestBrokerRestart restarts Mosquitto while the source is taking messages in: every message published
// (before and after the restart) ends up in the log.
func TestBrokerRestart(t *testing.T) {
	const n = 2000
	for _, proto := range protocols {
		t.Run("v"+proto, func(t *testing.T) {
			m := startMosquitto(t, "max_inflight_messages 100")
			sl := newSlowLog(t, 500*time.Microsecond)
			r := startSource(t, testConfig(m.URL, "sluice-restart", proto), sl)
			r.waitReady(t)
			ms := messages("restart", n)
			pub := newPublisher(t, m.URL, "pub-restart", nil, "", "")
			pub.publish(t, 1, ms[:n/2])
			if got := sl.inner.Next(); got >= n/2 {
				t.Logf("the source had taken all %d messages in before the restart (%d)", n/2, got)
			}
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			pub.publish(t, 1, ms[n/2:])
			testkit.Eventually(t, 30*time.Second, func() bool { return distinctPayloads(t, sl.inner) == n },
				"log holds %d distinct of %d messages", distinctPayloads(t, sl.inner), n)
			if got := r.reconnects(reasonConnectionLost); got < 1 {
				t.Fatalf("reconnects{reason=connection_lost} = %d, want at least 1", got)
			}
			r.waitReady(t)
		})
	}
}

// TestAppendFailure fails the first appends: nothing is acknowledged, the source reconnects, the broker
// redelivers, and every message ends up in the log. The messages wait at the broker while the source is
// offline, as after an outage (mochi v2.7.9 loses messages published while a session is being taken
// over, which a reconnection does: publishing during the failures would test mochi, not the source).
func TestAppendFailure(t *testing.T) {
	const n, failures = 300, 5
	for _, b := range brokers {
		for _, proto := range protocols {
			t.Run(b.name+"/v"+proto, func(t *testing.T) {
				if b.name == "mochi" {
					// About one run in thirty, mochi v2.7.9 never redelivers the messages of a session
					// whose client disconnected while they were in flight, whatever the reconnect delay;
					// Mosquitto, the external broker this path serves, redelivers every time (-count=30).
					t.Skip("mochi v2.7.9 sometimes loses a reconnecting session's in-flight messages; Mosquitto covers this")
				}
				url := b.start(t)
				cfg := testConfig(url, "sluice-fail", proto)
				first := startSource(t, cfg, memlog.New()) // creates the session and its subscription
				first.waitReady(t)
				if err := first.stop(t); !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				newPublisher(t, url, "pub-fail", nil, "", "").publish(t, 1, messages("fail", n))

				fl := &failingLog{inner: memlog.New()}
				fl.left.Store(failures)
				r := startSource(t, cfg, fl)
				testkit.Eventually(t, 20*time.Second, func() bool { return distinctPayloads(t, fl.inner) == n },
					"log holds %d distinct of %d messages", distinctPayloads(t, fl.inner), n)
				if got := r.appendErrs(); got != failures {
					t.Fatalf("append errors metric %d, want %d", got, failures)
				}
				if got := r.reconnects(reasonAppendError); got < 1 || got > failures {
					t.Fatalf("reconnects{reason=append_error} = %d, want 1 to %d", got, failures)
				}
				if got := r.reconnects(reasonConnectionLost); got != 0 {
					t.Fatalf("reconnects{reason=connection_lost} = %d, want 0", got)
				}
				r.waitReady(t)
			})
		}
	}
}

// TestGracefulStop stops a source while messages are in flight, then starts another with the same
// client id on the same log: what the first appended it acknowledged before disconnecting, so nothing
// is redelivered twice and the log holds every message exactly once.
func TestGracefulStop(t *testing.T) {
	const n = 400
	for _, b := range brokers {
		for _, proto := range protocols {
			t.Run(b.name+"/v"+proto, func(t *testing.T) {
				if b.name == "mochi" && proto == Protocol5 {
					// mochi v2.7.9 stalls an MQTT 5 subscriber whose Receive Maximum it reaches: a message
					// queued for quota is sent and dropped from its in-flight set, so its PUBACK never
					// returns the quota. This test needs a small max_inflight; Mosquitto covers MQTT 5.
					t.Skip("mochi's MQTT 5 send-quota handling stalls at a small Receive Maximum")
				}
				url := b.start(t)
				sl := newSlowLog(t, 2*time.Millisecond)
				cfg := testConfig(url, "sluice-graceful", proto)
				cfg.MaxInFlight = 20 // mochi sends MQTT 3.1.1 clients everything at once
				r1 := startSource(t, cfg, sl)
				r1.waitReady(t)
				ms := messages("graceful", n)
				pub := newPublisher(t, url, "pub-graceful", nil, "", "")
				published := make(chan struct{})
				go func() { pub.publish(t, 1, ms); close(published) }()
				testkit.Eventually(t, 10*time.Second, func() bool { return sl.inner.Next() >= 50 }, "log holds %d messages", sl.inner.Next())
				if err := r1.stop(t); !errors.Is(err, context.Canceled) {
					t.Fatalf("Run returned %v, want context.Canceled", err)
				}
				<-published
				first := sl.inner.Next()
				t.Logf("first source appended %d of %d", first, n)
				if got := r1.acked(); int64(got) != first {
					t.Fatalf("first source appended %d and acknowledged %d, want all acknowledged before disconnecting", first, got)
				}
				if first >= n {
					t.Fatalf("the first source took all %d messages in before it was stopped (%d): the test proves nothing", n, first)
				}
				r2 := startSource(t, cfg, sl)
				testkit.Eventually(t, 20*time.Second, func() bool { return distinctPayloads(t, sl.inner) == n },
					"log holds %d distinct of %d messages", distinctPayloads(t, sl.inner), n)
				if err := r2.stop(t); !errors.Is(err, context.Canceled) {
					t.Fatalf("Run returned %v", err)
				}
				for p, c := range payloadSet(t, sl.inner) {
					if c != 1 {
						t.Fatalf("payload %s is in the log %d times, want once", p, c)
					}
				}
			})
		}
	}
}

// TestReady follows Ready through a source's life: not connected, failing to connect, ready once
// subscribed, not ready when the broker goes away, stopped.
func TestReady(t *testing.T) {
	for _, proto := range protocols {
		t.Run("v"+proto, func(t *testing.T) {
			port := testkit.FreePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			cfg := testConfig("mqtt://"+addr, "sluice-ready", proto)
			s, err := New(cfg, memlog.New(), testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(s.Ready(), ErrNotConnected) {
				t.Fatalf("Ready before Run = %v, want ErrNotConnected", s.Ready())
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			testkit.Eventually(t, 5*time.Second, func() bool {
				err := s.Ready()
				return err != nil && strings.Contains(err.Error(), "connect to mqtt://"+addr) && strings.Contains(err.Error(), "refused")
			}, "Ready = %v, want a refused connection", s.Ready())

			b := startMochi(t, mochiOptions{tcpListen: addr})
			testkit.Eventually(t, 5*time.Second, func() bool { return s.Ready() == nil }, "not ready with the broker up: %v", s.Ready())
			b.close()
			testkit.Eventually(t, 5*time.Second, func() bool { return s.Ready() != nil }, "still ready with the broker gone")
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v", err)
			}
			if !errors.Is(s.Ready(), ErrStopped) {
				t.Fatalf("Ready after Run = %v, want ErrStopped", s.Ready())
			}
		})
	}
}

// TestRunStopsPromptly cancels Run in each state it can wait in.
func TestRunStopsPromptly(t *testing.T) {
	var accepted atomic.Int32
	silent := func(t *testing.T) string { // accepts connections and never answers
		accepted.Store(0)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conns := make(chan net.Conn, 16)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					close(conns)
					return
				}
				conns <- c
				accepted.Add(1)
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			for c := range conns {
				c.Close()
			}
		})
		return "mqtt://" + ln.Addr().String()
	}
	cases := []struct {
		name  string
		url   func(t *testing.T) string
		setup func(c *Config)
		wait  func(t *testing.T, r *running)
	}{
		{"connected", func(t *testing.T) string { return startMochi(t, mochiOptions{}).url() }, nil,
			func(t *testing.T, r *running) { r.waitReady(t) }},
		{"waiting for CONNACK", silent, func(c *Config) { c.ConnectTimeout = time.Minute },
			func(t *testing.T, r *running) {
				testkit.Eventually(t, 5*time.Second, func() bool { return accepted.Load() > 0 }, "no connection made")
			}},
		{"backing off", func(t *testing.T) string { return fmt.Sprintf("mqtt://127.0.0.1:%d", testkit.FreePort(t)) },
			func(c *Config) { c.ReconnectBackoffMin, c.ReconnectBackoffMax = time.Minute, time.Minute },
			func(t *testing.T, r *running) {
				testkit.Eventually(t, 5*time.Second, func() bool { return r.Ready() != ErrNotConnected }, "no connection attempt")
			}},
	}
	for _, c := range cases {
		for _, proto := range protocols {
			t.Run(c.name+"/v"+proto, func(t *testing.T) {
				cfg := testConfig(c.url(t), "sluice-prompt", proto)
				if c.setup != nil {
					c.setup(&cfg)
				}
				r := startSource(t, cfg, memlog.New())
				c.wait(t, r)
				start := time.Now()
				if err := r.stop(t); !errors.Is(err, context.Canceled) {
					t.Fatalf("Run returned %v, want context.Canceled", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("Run took %s to return after cancel, want under 1s", d)
				}
			})
		}
	}
}
