// Package lakecheck judges a sluice lake as an outside reader would, to count what the benchmark and
// chaos runs landed: the committed files of each table come from the table's Delta log, read here
// from its JSON commits (not through sluice's lake package, whose correctness is what is being
// checked), and the rows of those files are read by DuckDB. It counts rows, duplicates of
// (sensor_id, metric, ts) in readings/, readings missing against a simulator truth file, quarantine
// rows with their reasons, and the bytes of the committed files.
//
// It only reads the lake directory; it is used from one goroutine at a time (a Checker holds one
// DuckDB connection pool, which database/sql makes safe for concurrent use anyway).
//
// # Written here
//
// The Delta log reader is the few lines the e2e tests also use (JSON commits in version order, add
// and remove by path): enough for sluice's tables, which have no deletion vectors and are read here
// only while sluice is stopped or has committed what is counted. DuckDB's delta extension would do
// it, but cannot be installed without network access.
package lakecheck
