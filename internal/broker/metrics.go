package broker

import (
	"fmt"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/system"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the broker's Prometheus metrics, sluice_broker_*.
type metrics struct {
	received      [3]prometheus.Counter // by QoS: messages published by clients and appended (or attempted)
	skipped       prometheus.Counter    // messages on topics outside broker.topics (routed, not appended)
	appendErrors  [3]prometheus.Counter // by QoS
	appendSeconds [3]prometheus.Observer
	connected     prometheus.GaugeFunc
	dropped       prometheus.CounterFunc
	pending       prometheus.GaugeFunc
	pendingLimit  prometheus.Gauge
	pendingWaits  prometheus.CounterFunc
}

func newMetrics(reg prometheus.Registerer, info *system.Info, pend *pending) (*metrics, error) {
	received := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_broker_messages_received_total",
		Help: "Messages published to the embedded broker on ingested topics, by QoS.",
	}, []string{"qos"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_broker_append_errors_total",
		Help: "Messages on ingested topics that were not stored in the log (the append failed or could not start), by QoS. QoS 1 and 2 publishers were disconnected without an acknowledgement and resend; QoS 0 messages are lost.",
	}, []string{"qos"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_broker_append_duration_seconds",
		Help:    "Time from a message's arrival to its durability in the log (QoS 1 and 2: what the publisher waits for before its acknowledgement), by QoS.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16), // 25µs .. 0.8s
	}, []string{"qos"})
	m := &metrics{
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_broker_messages_skipped_total",
			Help: "Messages published on topics outside broker.topics: routed to subscribers, not appended.",
		}),
		connected: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_broker_clients_connected",
			Help: "Clients connected to the embedded broker.",
		}, func() float64 { return float64(atomic.LoadInt64(&info.ClientsConnected)) }),
		dropped: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sluice_broker_subscriber_dropped_total",
			Help: "Messages the embedded broker dropped for subscribing clients whose queue (broker.subscriber_queue) was full. Ingest is not affected: these are copies routed to subscribers.",
		}, func() float64 {
			return float64(atomic.LoadInt64(&info.MessagesDropped) + atomic.LoadInt64(&info.InflightDropped))
		}),
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_broker_pending_bytes",
			Help: "Memory the embedded broker holds for messages read and not yet durable (pipelined: not yet acknowledged), as broker.pending_bytes counts it.",
		}, func() float64 { return float64(pend.held.Load()) }),
		pendingLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_broker_pending_limit_bytes",
			Help: "broker.pending_bytes: past it connections wait before reading more (backpressure).",
		}),
		pendingWaits: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sluice_broker_pending_waits_total",
			Help: "Messages whose connection waited for room in broker.pending_bytes before appending them (backpressure: the log is slower than the publishers, or cannot write).",
		}, func() float64 { return float64(pend.waits.Load()) }),
	}
	m.pendingLimit.Set(float64(pend.max))
	for q := range 3 {
		l := fmt.Sprint(q)
		m.received[q] = received.WithLabelValues(l)
		m.appendErrors[q] = errs.WithLabelValues(l)
		m.appendSeconds[q] = latency.WithLabelValues(l)
	}
	if reg != nil {
		cs := []prometheus.Collector{received, errs, latency, m.skipped, m.connected, m.dropped, m.pending, m.pendingLimit, m.pendingWaits}
		for i, c := range cs {
			if err := reg.Register(c); err != nil {
				for _, done := range cs[:i] {
					reg.Unregister(done)
				}
				return nil, fmt.Errorf("register broker metrics: %w", err)
			}
		}
	}
	return m, nil
}
