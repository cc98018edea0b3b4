package mqtt

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a connection ended, the values of sluice_mqtt_reconnects_total's reason label.
const (
	reasonConnectionLost = "connection_lost"
	reasonAppendError    = "append_error"
)

// metrics are the source's Prometheus metrics, sluice_mqtt_*.
type metrics struct {
	received      [2]prometheus.Counter // by QoS
	acked         prometheus.Counter
	appendErrors  prometheus.Counter
	reconnects    *prometheus.CounterVec
	connectErrors prometheus.Counter
	connected     prometheus.Gauge
	inflight      prometheus.Gauge
	ackLatency    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	received := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_mqtt_messages_received_total",
		Help: "Messages received from the external MQTT broker, by the QoS they arrived with (duplicates redelivered after a reconnection count again).",
	}, []string{"qos"})
	m := &metrics{
		received: [2]prometheus.Counter{received.WithLabelValues("0"), received.WithLabelValues("1")},
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_mqtt_messages_acked_total",
			Help: "QoS 1 messages acknowledged to the broker (PUBACK), each after its append to the log was durable.",
		}),
		appendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_mqtt_append_errors_total",
			Help: "Messages whose append to the log failed: not acknowledged, and the connection restarted so the broker redelivers them.",
		}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_mqtt_reconnects_total",
			Help: "Connections that ended other than by shutdown, by reason (connection_lost, append_error).",
		}, []string{"reason"}),
		connectErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_mqtt_connect_errors_total",
			Help: "Connection attempts that failed (network, TLS, CONNACK refusal or SUBACK failure).",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_mqtt_connected",
			Help: "1 while connected to the broker and subscribed, else 0.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_mqtt_inflight_messages",
			Help: "Messages received and not yet durable and acknowledged.",
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_mqtt_ack_latency_seconds",
			Help:    "Time from handing a message to the log to acknowledging it to the broker (the group commit plus queueing).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50µs .. 1.6s
		}),
	}
	// Both reasons exist from the start, so dashboards see 0 rather than nothing.
	m.reconnects.WithLabelValues(reasonConnectionLost)
	m.reconnects.WithLabelValues(reasonAppendError)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{received, m.acked, m.appendErrors, m.reconnects, m.connectErrors, m.connected, m.inflight, m.ackLatency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register mqtt metrics: %w", err)
		}
	}
	return m, nil
}
