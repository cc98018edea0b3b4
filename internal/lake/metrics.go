package lake

import "github.com/prometheus/client_golang/prometheus"

// metrics are the lake's Prometheus metrics, labelled by table.
type metrics struct {
	commits       *prometheus.CounterVec
	commitErrors  *prometheus.CounterVec
	conflicts     *prometheus.CounterVec
	landed        *prometheus.CounterVec
	rows          *prometheus.CounterVec
	files         *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	commitSeconds *prometheus.HistogramVec
	version       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	l := []string{"table"}
	m := &metrics{
		commits:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_lake_commits_total", Help: "Delta commits written."}, l),
		commitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_lake_commit_errors_total", Help: "Commit calls that failed (rows kept for the retry)."}, l),
		conflicts:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_lake_commit_conflicts_total", Help: "Commit versions taken by another writer first (retried at the next version)."}, l),
		landed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_lake_commits_already_landed_total", Help: "Commit calls whose txn the log already held (an earlier attempt had landed): not written again."}, l),
		rows:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_lake_rows_total", Help: "Rows committed."}, l),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_lake_files_total", Help: "Data files committed."}, l),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_lake_bytes_total", Help: "Bytes of data files committed."}, l),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_lake_commit_seconds", Help: "Time to write a commit's data files and its log entry.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, l),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_lake_table_version", Help: "Latest Delta version of the table this process has seen."}, l),
	}
	if reg != nil {
		reg.MustRegister(m.commits, m.commitErrors, m.conflicts, m.landed, m.rows, m.files, m.bytes, m.commitSeconds, m.version)
	}
	return m
}
