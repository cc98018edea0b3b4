package query

import (
	"fmt"
	"net"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// Config is the SQL engine's section ("query") of sluice's configuration.
type Config struct {
	Enabled          bool          `yaml:"enabled" doc:"Serve SQL over the lake and the readings not yet committed: POST /api/v1/query on the HTTP listener, and the PostgreSQL protocol (section pgwire). Needs a file:// lake (DuckDB cannot read object stores here)."`
	Threads          int           `yaml:"threads" doc:"DuckDB worker threads (0: one per CPU). They run at the niceness below."`
	Nice             int           `yaml:"nice" doc:"OS scheduling niceness (0 to 19) of DuckDB's worker threads (Linux). 0 (default): they run at ingest's priority, and execution_share is what holds queries back while readings arrive. 19 gives them CPU time only when nothing else needs it, but the thread that called a statement waits for their tasks by polling at normal priority (a Go thread cannot be lowered: it would stall the whole process at every garbage collection): on a busy machine that wait costs CPU at normal priority (BenchmarkHotFlush busy: 412-1,893 ns of the caller's CPU a hot row at 19, 311-428 at 0), and sluice's own statements (hot rows, commits, checkpoints) wait too, holding ingest back (2 cores, sluice through Mosquitto, six runs each, medians at 19 and at 0: ratio to the broker's ceiling QoS 0 0.69 and 0.77, QoS 1 0.84 and 0.92, CPU per QoS 1 message 14.2 and 12.8 µs; under 8 clients' full scans without pause, ingest kept 91-98% of its pace at 19 and 84-102% at 0, which answered 50-79 queries to 19's 39-54)."`
	MemoryLimit      config.Bytes  `yaml:"memory_limit" doc:"DuckDB's memory limit (hot rows, query state). Larger sorts and joins spill to temp_dir."`
	TempDir          string        `yaml:"temp_dir" doc:"Where DuckDB spills query state that does not fit in memory_limit. Each run uses a fresh spill-* directory inside it, removed on exit. Empty: <data_dir>/query-tmp."`
	Timeout          time.Duration `yaml:"timeout" doc:"Longest a query may run; past it the query is cancelled with an error."`
	MaxRows          int           `yaml:"max_rows" doc:"Most rows one query returns; a longer result is cut there and marked truncated (HTTP) or ends in an error (PostgreSQL protocol). 0: no limit."`
	MaxConcurrent    int           `yaml:"max_concurrent" doc:"Queries executed at once; further queries wait for a slot (up to their timeout)."`
	ExecutionShare   float64       `yaml:"execution_share" doc:"Ingest comes first: while readings are arriving, queries together execute for at most this share of the time (0.1: 100 ms a second, summed over concurrent queries); the next query waits for its turn (up to its timeout). 1: no limit. Without ingest queries are not held back."`
	ExecutionBurst   time.Duration `yaml:"execution_burst" doc:"Query execution time available at once before execution_share applies, so interactive queries run at once and only a sustained query load waits."`
	RefreshInterval  time.Duration `yaml:"refresh_interval" doc:"How often the Delta logs are read for commits made by other writers (other sluice instances, compaction). Commits made by this process are visible at once."`
	HotFlushInterval time.Duration `yaml:"hot_flush_interval" doc:"Readings decoded but not yet committed to a lake file (hot rows) are handed to the SQL engine when a query starts, so it sees every reading decoded before it, and between queries at most this often. Larger hand-overs cost DuckDB less a row (BenchmarkHotFlush: 4.2 µs a row in 512-row flushes, 0.83 µs in 16,384-row ones; 50,000 readings/s make 500-row flushes at 10ms, 12,500-row ones at 250ms): Mosquitto at 20,000 QoS 1 msg/s, sluice CPU per message: 10ms: 37.3-38.5 µs; 50ms: 33.7-34.4 µs (no queries running). Shorter makes flushes smaller, so a query that starts finds less to hand over first, and sluice_query_freshness_seconds smaller."`
	PGWire           PGWireConfig  `yaml:"pgwire" doc:"PostgreSQL wire protocol: psql, JDBC, pgx, Grafana's PostgreSQL data source."`
}

// PGWireConfig is the PostgreSQL protocol listener.
type PGWireConfig struct {
	Listen   string `yaml:"listen" doc:"Address of the PostgreSQL protocol listener. \"\" disables it."`
	Username string `yaml:"username" doc:"When set (with password), clients must log in as this user with this password (sent in clear text: enable TLS off loopback)."`
	Password string `yaml:"password" doc:"Password for username." secret:"true"`
	TLSCert  string `yaml:"tls_cert" doc:"PEM certificate file; with tls_key, clients may (sslmode=require) use TLS."`
	TLSKey   string `yaml:"tls_key" doc:"PEM private key file for tls_cert."`
}

// DefaultConfig returns the defaults: enabled; DuckDB threads on every CPU at ingest's priority, 2GiB of
// memory; queries limited to 5 minutes and a million rows, 8 at once, and to a tenth of the time
// while readings arrive (1 s at once); the PostgreSQL protocol on
// 127.0.0.1:5433 without authentication (loopback only).
func DefaultConfig() Config {
	return Config{
		Enabled:          true,
		Nice:             0,
		MemoryLimit:      2 << 30,
		Timeout:          5 * time.Minute,
		MaxRows:          1_000_000,
		MaxConcurrent:    8,
		ExecutionShare:   0.1,
		ExecutionBurst:   time.Second,
		RefreshInterval:  time.Second,
		HotFlushInterval: 250 * time.Millisecond,
		PGWire:           PGWireConfig{Listen: "127.0.0.1:5433"},
	}
}

// Validate implements config.Validator.
func (c Config) Validate() config.Errors {
	var es config.Errors
	es.Check(c.Threads >= 0 && c.Threads <= 1024, "threads", fmt.Sprintf("%d is out of range", c.Threads), "use 0 (one per CPU) or a thread count such as 2")
	es.Check(c.Nice >= 0 && c.Nice <= 19, "nice", fmt.Sprintf("%d is out of range", c.Nice), "use 0 (same priority as ingest) to 19 (lowest)")
	es.Check(c.MemoryLimit >= 64<<20, "memory_limit", fmt.Sprintf("%s is below 64MiB", c.MemoryLimit), "use at least 64MiB; 2GiB suits most machines")
	es.Check(c.Timeout > 0, "timeout", fmt.Sprintf("%s is not positive", c.Timeout), "use a duration such as 5m")
	es.Check(c.MaxRows >= 0, "max_rows", fmt.Sprintf("%d is negative", c.MaxRows), "use 0 (no limit) or a row count such as 1000000")
	es.Check(c.MaxConcurrent >= 1, "max_concurrent", fmt.Sprintf("%d is below 1", c.MaxConcurrent), "use a count such as 8")
	es.Check(c.ExecutionShare > 0 && c.ExecutionShare <= 1, "execution_share", fmt.Sprintf("%g is out of range", c.ExecutionShare), "use a share above 0 and at most 1 (no limit), such as 0.1")
	es.Check(c.ExecutionBurst > 0, "execution_burst", fmt.Sprintf("%s is not positive", c.ExecutionBurst), "use a duration such as 2s")
	es.Check(c.RefreshInterval > 0, "refresh_interval", fmt.Sprintf("%s is not positive", c.RefreshInterval), "use a duration such as 1s")
	es.Check(c.HotFlushInterval > 0 && c.HotFlushInterval <= 10*time.Second, "hot_flush_interval", fmt.Sprintf("%s is out of range", c.HotFlushInterval), "use a duration from 1ms to 10s, such as 250ms")
	return es
}

// Validate implements config.Validator.
func (c PGWireConfig) Validate() config.Errors {
	var es config.Errors
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			es.Add("listen", fmt.Sprintf("%q is not host:port", c.Listen), "write it as 127.0.0.1:5433, or \"\" to disable")
		}
	}
	es.Check((c.Username == "") == (c.Password == ""), "username", "username and password must be set together", "set both, or neither (no authentication: loopback only)")
	es.Check((c.TLSCert == "") == (c.TLSKey == ""), "tls_cert", "tls_cert and tls_key must be set together", "set both files, or neither")
	return es
}
