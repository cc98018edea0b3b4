package query

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queries         *prometheus.CounterVec
	querySeconds    prometheus.Histogram
	rows            prometheus.Counter
	waiting         prometheus.Gauge
	hotRows         prometheus.Gauge
	hotFlushSeconds prometheus.Histogram
	checkpoints     *prometheus.HistogramVec
	hotVisibility   prometheus.Histogram
	refreshes       *prometheus.CounterVec
	refreshErrors   prometheus.Counter
	tableFiles      *prometheus.GaugeVec
	tableVersion    *prometheus.GaugeVec
	indexedFiles    prometheus.Counter
	rationed        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queries:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_query_queries_total", Help: "SQL queries, by result: ok, refused (sandbox), invalid (syntax, unknown names), timeout, error."}, []string{"result"}),
		querySeconds:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_query_duration_seconds", Help: "Time to execute a query and read its rows.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}),
		rows:            prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_query_rows_total", Help: "Rows returned by queries."}),
		waiting:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_query_waiting", Help: "Queries waiting for a slot (query.max_concurrent)."}),
		hotRows:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_query_hot_rows", Help: "Readings queryable but not yet in a committed lake file."}),
		hotFlushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_query_hot_flush_duration_seconds", Help: "Time to hand a batch of hot rows to DuckDB.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		checkpoints:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_query_checkpoint_duration_seconds", Help: "Time DuckDB took to compress the engine's tables (CHECKPOINT after each hot.checkpointRows hot rows), by result: ok, or skipped (another transaction was writing; retried after the next flush).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"result"}),
		hotVisibility:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_query_freshness_seconds", Help: "Time from when sluice received a reading to when it was handed to the SQL engine: by a query about to start (which sees every reading decoded before it), or every query.hot_flush_interval.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		refreshes:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_query_view_refreshes_total", Help: "Times a view took a new version of its Delta table, by view."}, []string{"view"}),
		refreshErrors:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_query_refresh_errors_total", Help: "Failed attempts to read a Delta log or redefine a view (retried)."}),
		tableFiles:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_query_view_files", Help: "Committed files a view reads, by view."}, []string{"view"}),
		tableVersion:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_query_view_version", Help: "Delta table version a view shows, by view."}, []string{"view"}),
		indexedFiles:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_query_latest_indexed_files_total", Help: "Readings files folded into the latest-value index."}),
		rationed:        prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_query_rationed_seconds_total", Help: "Time queries waited for their turn while ingest was active (query.execution_share)."}),
	}
	if reg != nil {
		reg.MustRegister(m.queries, m.querySeconds, m.rows, m.waiting, m.hotRows, m.hotFlushSeconds, m.checkpoints, m.hotVisibility,
			m.refreshes, m.refreshErrors, m.tableFiles, m.tableVersion, m.indexedFiles, m.rationed)
	}
	return m
}
