package wal

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the log's Prometheus metrics, sluice_wal_*.
type metrics struct {
	appendedRecords prometheus.Counter
	appendedBytes   prometheus.Counter
	fsyncSeconds    prometheus.Histogram
	recordsPerFsync prometheus.Histogram
	retainedBytes   prometheus.Gauge
	retainedSegs    prometheus.Gauge
	backpressure    prometheus.Gauge
	writeErrors     prometheus.Counter
	repairs         *prometheus.CounterVec
	nextOffset      prometheus.Gauge

	reg prometheus.Registerer
}

func newMetrics() *metrics {
	return &metrics{
		appendedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_wal_appended_records_total", Help: "Records made durable in the log.",
		}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_wal_appended_bytes_total", Help: "Bytes written to segment files, framing included, by successful group commits.",
		}),
		fsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_wal_fsync_duration_seconds", Help: "Duration of one group commit's fdatasync.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14), // 25µs .. 200ms
		}),
		recordsPerFsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_wal_records_per_fsync", Help: "Records made durable by one write and one fdatasync (group commit size).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10), // 1 .. 262144
		}),
		retainedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_wal_retained_bytes", Help: "Bytes in the log's segment files.",
		}),
		retainedSegs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_wal_retained_segments", Help: "Segment files in the log.",
		}),
		backpressure: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_wal_backpressure", Help: "1 while the log is at wal.max_size and holds appends back until consumers commit.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_wal_write_errors_total", Help: "Group commits whose write or fdatasync failed (disk full, I/O error); their appends got the error.",
		}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_wal_repairs_total", Help: "Repairs made when opening the log: torn_tail (truncated), corruption (moved aside), missing (a gap between segments), empty (an empty segment file removed).",
		}, []string{"kind"}),
		nextOffset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_wal_next_offset", Help: "Offset the next appended record gets.",
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.appendedRecords, m.appendedBytes, m.fsyncSeconds, m.recordsPerFsync,
		m.retainedBytes, m.retainedSegs, m.backpressure, m.writeErrors, m.repairs, m.nextOffset}
}

// register registers every metric on reg (nil: none).
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for i, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors()[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("register metrics: another log is registered on this registry: %w", err)
			}
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	m.reg = reg
	return nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
	m.reg = nil
}
