package mqtt

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	sluicelog "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
)

type nopAcker struct{}

func (nopAcker) ack([]*pending) {}

// nopLog is durable at once and keeps nothing: what is left is the source's own cost.
type nopLog struct{}

func (nopLog) Append(context.Context, ...sluicelog.Entry) error  { return nil }
func (nopLog) AppendAsync(_ []sluicelog.Entry, done func(error)) { done(nil) }

// BenchmarkHandle measures the per-message cost inside sluice, without the network: envelope encoding,
// the append and the in-order ack (nop: the source alone; memlog: with the in-memory log's copy).
func BenchmarkHandle(b *testing.B) {
	topic := "plant/a/line2/pump-07/temperature"
	payload := []byte(`{"sensor_id":"pump-07","ts":"2026-11-24T12:00:00.123Z","temperature":71.3,"unit":"C","battery":0.93}`)
	for _, c := range []struct {
		name string
		log  sluicelog.Appender
	}{{"nop", nopLog{}}, {"memlog", memlog.New()}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Broker = "mqtt://127.0.0.1:1"
			s, err := New(cfg, c.log, testLogger(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			ss := newSession(s)
			ss.setAcker(nopAcker{})
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				ss.handle(topic, payload, 1, 1)
			}
			b.StopTimer()
			ss.end()
		})
	}
}

// groupLog completes appends in groups, like a WAL's group commit: whatever queued while the previous
// "fsync" (commit, a sleep) ran is committed together.
type groupLog struct {
	inner  *memlog.Log
	commit time.Duration
	mu     sync.Mutex
	queue  []heldAppend
	wake   chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newGroupLog(commit time.Duration) *groupLog {
	g := &groupLog{inner: memlog.New(), commit: commit, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	g.wg.Go(func() {
		var batch []heldAppend
		for {
			select {
			case <-g.wake:
			case <-g.stop:
				return
			}
			for {
				g.mu.Lock()
				batch, g.queue = g.queue, batch[:0]
				g.mu.Unlock()
				if len(batch) == 0 {
					break
				}
				time.Sleep(g.commit)
				for _, a := range batch {
					g.inner.AppendAsync(a.entries, a.done)
				}
			}
		}
	})
	return g
}

func (g *groupLog) close() { close(g.stop); g.wg.Wait() }

func (g *groupLog) Append(ctx context.Context, entries ...sluicelog.Entry) error {
	return g.inner.Append(ctx, entries...)
}

func (g *groupLog) AppendAsync(entries []sluicelog.Entry, done func(error)) {
	g.mu.Lock()
	g.queue = append(g.queue, heldAppend{entries, done})
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// BenchmarkMosquitto measures messages per second from 4 publisher connections through a private
// Mosquitto into the log, per protocol, QoS, Mosquitto in-flight limit and log commit time (memlog: none;
// group-200µs: a group commit of 200µs, about one fdatasync here; group-2ms: a slow disk). Run it with a
// fixed count, e.g.
// go test -run '^$' -bench BenchmarkMosquitto -benchtime 20000x ./internal/source/mqtt/
func BenchmarkMosquitto(b *testing.B) {
	const pubConns = 4
	for _, proto := range protocols {
		for _, qos := range []int{0, 1} {
			for _, inflight := range []int{20, 1000} {
				for _, commit := range []time.Duration{0, 200 * time.Microsecond, 2 * time.Millisecond} {
					if qos == 0 && inflight != 20 {
						continue // the in-flight limit is for QoS 1 only
					}
					logName := "memlog"
					if commit > 0 {
						logName = fmt.Sprintf("group-%s", commit)
					}
					b.Run(fmt.Sprintf("v%s/qos%d/inflight%d/%s", proto, qos, inflight, logName), func(b *testing.B) {
						m := startMosquitto(b, fmt.Sprintf("max_inflight_messages %d", inflight))
						g := newGroupLog(commit)
						defer g.close()
						var l sluicelog.Appender = g
						if commit == 0 {
							l = g.inner
						}
						cfg := testConfig(m.URL, "sluice-bench", proto)
						cfg.QoS = qos
						cfg.MaxInFlight = 1000
						r := startSource(b, cfg, l)
						r.waitReady(b)
						ms := messages("bench", b.N)
						b.ReportAllocs()
						b.SetBytes(int64(len(ms[0].payload)))
						b.ResetTimer()
						start := time.Now()
						publishFrom(b, m.URL, pubConns, byte(qos), ms)
						deadline := time.Now().Add(60 * time.Second)
						for g.inner.Next() < int64(b.N) && time.Now().Before(deadline) {
							time.Sleep(time.Millisecond)
						}
						elapsed := time.Since(start)
						b.StopTimer()
						got := g.inner.Next()
						b.ReportMetric(float64(got)/elapsed.Seconds(), "msgs/s")
						if got < int64(b.N) {
							b.ReportMetric(float64(int64(b.N)-got), "lost")
						}
						r.stop(b)
					})
				}
			}
		}
	}
}

// BenchmarkMosquittoBaseline is BenchmarkMosquitto's ceiling on this machine: the same publishers and
// Mosquitto, and a plain paho.mqtt.golang subscriber that acknowledges on receipt and keeps nothing.
func BenchmarkMosquittoBaseline(b *testing.B) {
	for _, qos := range []int{0, 1} {
		for _, inflight := range []int{20, 1000} {
			if qos == 0 && inflight != 20 {
				continue
			}
			b.Run(fmt.Sprintf("v3.1.1/qos%d/inflight%d", qos, inflight), func(b *testing.B) {
				m := startMosquitto(b, fmt.Sprintf("max_inflight_messages %d", inflight))
				var got atomic.Int64
				o := paho.NewClientOptions().AddBroker(m.URL).SetClientID("baseline").SetCleanSession(false).
					SetDefaultPublishHandler(func(paho.Client, paho.Message) { got.Add(1) })
				c := paho.NewClient(o)
				if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					b.Fatal(tok.Error())
				}
				defer c.Disconnect(100)
				if tok := c.Subscribe("t/#", byte(qos), nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					b.Fatal(tok.Error())
				}
				ms := messages("bench", b.N)
				b.SetBytes(int64(len(ms[0].payload)))
				b.ResetTimer()
				start := time.Now()
				publishFrom(b, m.URL, 4, byte(qos), ms)
				deadline := time.Now().Add(60 * time.Second)
				for got.Load() < int64(b.N) && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				b.ReportMetric(float64(got.Load())/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}
