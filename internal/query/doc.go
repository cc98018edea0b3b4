// Package query owns sluice's SQL engine: an in-memory DuckDB (github.com/duckdb/duckdb-go/v2) whose
// views read the lake's committed Parquet files plus the readings not yet committed ("hot rows"),
// sandboxed and read-only. Its subpackages serve it: httpsql (POST /api/v1/query) and pgwire (the
// PostgreSQL protocol). It reads the lake and never writes it.
//
// # Views
//
// readings, raw, quarantine and registry_versions (the lake's sensors/ table: every registry version,
// raw) read exactly the files their Delta log names (never a glob, so a file whose commit never
// happened is never read), with the hive partition columns (date, hour). latest holds the newest
// reading per (sensor_id, metric) and sensors the current registry (the newest version archived in
// the lake) joined with when each sensor was last seen; sensors seen but not registered are listed
// with registered = false. readings_1m merges the rows of the lake's readings_1m/ table (one per
// sensor, metric, minute and commit) into one per minute, plus the minutes of the hot rows that table
// does not hold yet (see rollupViewSQL). Any other Delta table in the lake's root becomes a view of its directory's
// name (Register names one explicitly), so later datasets need no change here.
//
// # Freshness and atomic commits
//
// See hot.go: hot rows are a DuckDB table of series numbers, times and values, joined with a table of
// the series (sensor, metric, unit, flags, partition) by the view the others read; a commit replaces the view's file list and deletes the hot
// rows it covers (by the decoder's txn version in the Delta log) in one DuckDB transaction, so every
// query, one snapshot, counts each reading exactly once. Views follow the logs by polling
// (query.refresh_interval) and at once for commits this process reports (CommittedReadings).
//
// # Sandbox
//
// See sandbox.go: DuckDB's enable_external_access=false with allowed_directories = the lake (and the
// spill directory), no extension installs or loads, lock_configuration=true; plus a statement check
// (only SELECT, and EXPLAIN of a SELECT; one statement at a time), and every query runs in a READ
// ONLY transaction. Lakes other than file:// are refused with ErrUnavailable: DuckDB needs httpfs for
// object stores, and no extension can be installed here.
//
// # Memory
//
// The engine's views and tables live in an in-memory database attached with COMPRESS (catalogName,
// every connection's default), and the hot writer checkpoints it every checkpointRows appended hot
// rows: DuckDB then stores them as it would in a file (about 7 bytes a reading in TestHotRowsCompressed
// instead of 136), and the memory of committed (deleted) hot rows is freed. query.memory_limit bounds
// what queries use on top.
//
// # What is durable
//
// Nothing: the engine holds no state of its own. Views, hot rows and the latest index are rebuilt
// from the lake at Open (hot rows from the decoder, which replays the log after a restart).
//
// # Goroutines
//
// Any goroutine may call Query, Prepare, Register, Refresh. AddReadings and CommittedReadings are
// called by the decoder's goroutine. The engine runs three goroutines of its own, stopped by Close:
// the hot writer (appends queued hot rows every query.hot_flush_interval; Prepare appends what is queued
// before DuckDB plans a query, so the query sees it), the poller (reads the
// Delta logs), and the indexer (folds new readings files into the latest index). Lock order:
// Engine.refreshMu, then hotReadings.writeMu, then hotReadings.mu.
//
// # Written by hand, and why
//
// Thread priority (priority_linux.go): with query.nice above 0, DuckDB is opened on a locked OS
// thread whose niceness is raised (DuckDB's workers inherit it; Go has no API for it), and the thread
// exits with its goroutine. The default is 0: the thread calling a statement polls for the tasks
// DuckDB's workers took, at normal priority, so starving the workers made every statement, sluice's
// own included, cost more and take longer (see Config.Nice). Queries are rationed instead while
// readings arrive (ration.go). The statement check
// is a few lines of keyword scanning, because DuckDB's prepared statement type alone lets PRAGMA
// through (as a SELECT) and hides what EXPLAIN ANALYZE would run. Error positions are read from
// DuckDB's "LINE n:" context block, which its C API offers only as text.
package query
