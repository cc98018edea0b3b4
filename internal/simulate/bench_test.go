package simulate

import (
	"context"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time (user + system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGenerator measures making one message (payload and truth) per shape.
func BenchmarkGenerator(b *testing.B) {
	cases := []struct {
		name   string
		shape  string
		faults FaultsConfig
	}{
		{"nested", ShapeNested, FaultsConfig{}},
		{"flat-unix", ShapeFlatUnix, FaultsConfig{}},
		{"metric-type", ShapeMetricType, FaultsConfig{}},
		{"topic-ms", ShapeTopicMS, FaultsConfig{}},
		{"nested-faults", ShapeNested, FaultsConfig{Spike: 0.01, Stuck: 0.01, Gap: 0.01, Duplicate: 0.01, Late: 0.01, OutOfOrder: 0.01, Malformed: 0.01}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Shape, cfg.Faults, cfg.Fleet = c.shape, c.faults, 10_000
			g, err := NewGenerator(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 512)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			size := len(g.Next(buf, now).Payload)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				m := g.Next(buf[:0], now.Add(time.Duration(i)*time.Microsecond))
				buf = m.Payload[:0]
			}
		})
	}
}

// BenchmarkTruthJSON measures formatting one truth line.
func BenchmarkTruthJSON(b *testing.B) {
	tr := Truth{Seq: 123456, SensorID: "Sensor 1-00042", Metric: "temperature", TS: time.Now(), Value: 23.17, HasValue: true, Topic: "sensors"}
	buf := tr.AppendJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = tr.AppendJSON(buf[:0])
	}
}

// BenchmarkPublish measures the most messages per second Run publishes (rate 10M/s, i.e. unpaced) to
// the broker in SLUICE_BENCH_BROKER (default the local Mosquitto, mqtt://127.0.0.1:1883), at QoS 0
// and 1, from 1 and 4 connections, with a fleet of 10k sensors in the nested shape. b.N is the count:
//
//	go test -run '^$' -bench BenchmarkPublish -benchtime 200000x ./internal/simulate
//
// Measured on the 2-core development machine against Mosquitto 2.0.11, while other builds kept the
// load average at 8–13 (so msg/s swung run to run; cpu-ns/msg is the publisher's own cost):
//
//	qos0/conns1   60k–168k msg/s   ~5 µs CPU/msg
//	qos0/conns4   12k–103k msg/s   ~6 µs CPU/msg
//	qos1/conns1   16k–41k msg/s    8–11 µs CPU/msg (the publisher used 12% of a core at 16k msg/s:
//	qos1/conns4   13k–80k msg/s    14–16 µs CPU/msg  the broker set the pace)
//
// paho.mqtt.golang on its own connection, same machine and load, one connection with 1000 tokens in
// flight: QoS 0 25k–35k msg/s, QoS 1 7.6k–10k; on netbuf's buffered connection 153k and 29k.
func BenchmarkPublish(b *testing.B) {
	broker := os.Getenv("SLUICE_BENCH_BROKER")
	if broker == "" {
		broker = "mqtt://127.0.0.1:1883"
	}
	u, err := url.Parse(broker)
	if err != nil {
		b.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err != nil {
		b.Skipf("no broker at %s: %v", broker, err)
	} else {
		c.Close()
	}
	cases := []struct {
		name  string
		qos   int
		conns int
	}{
		{"qos0/conns1", 0, 1}, {"qos0/conns4", 0, 4}, {"qos1/conns1", 1, 1}, {"qos1/conns4", 1, 4},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Broker, cfg.QoS, cfg.Connections = broker, c.qos, c.conns
			cfg.Rate, cfg.Fleet, cfg.Count = 1e7, 10_000, int64(b.N)
			cfg.Topic = "sluice-bench/{sensor}"
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			stats, err := Run(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			if stats.Published != int64(b.N) {
				b.Fatalf("published %d of %d: %+v", stats.Published, b.N, stats)
			}
			b.ReportMetric(stats.Rate(), "msg/s")
			// The publisher's own CPU per message (user + system, all goroutines): on a shared machine
			// msg/s depends on what the broker and others get; this does not.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/msg")
		})
	}
}
