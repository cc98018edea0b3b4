package testkit

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-project/sluice/internal/lake"
)

// TempLake opens a file:// lake in a temporary directory (closed when the test ends) and returns it
// with its URL.
func TempLake(t testing.TB) (*lake.Lake, string) {
	t.Helper()
	u := "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "lake"))
	lk, err := lake.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	return lk, u
}

// Committer writes rows to one table of a lake, one Delta commit per Commit call.
type Committer[T any] struct {
	w *lake.Writer[T]
}

// NewCommitter opens (creating it if needed) the table spec describes.
func NewCommitter[T any](t testing.TB, lk *lake.Lake, spec lake.Spec[T]) *Committer[T] {
	t.Helper()
	cfg := lake.DefaultConfig()
	cfg.RowGroupRows = 1024
	w, err := lake.NewWriter(context.Background(), lk, spec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Committer[T]{w: w}
}

// Commit adds rows and commits them with the txn (appID, version).
func (c *Committer[T]) Commit(t testing.TB, rows []T, appID string, version int64) {
	t.Helper()
	for _, r := range rows {
		c.w.Add(r)
	}
	if _, err := c.w.Commit(context.Background(), appID, version); err != nil {
		t.Fatal(err)
	}
}

// Readings returns n readings: sensors sensor-000… each reporting metric "temperature" (unit C)
// every step micros from start (Unix micros), value = sensor index + i/1000, ingest ids from
// firstID, in arrival order (time first).
// Each sensor's readings share one Series, as the decoder's do.
func Readings(n, sensors int, start, step, firstID int64) []lake.Reading {
	series := make([]*lake.Series, sensors)
	for s := range series {
		series[s] = &lake.Series{SensorID: fmt.Sprintf("sensor-%03d", s), Metric: "temperature", Unit: "C", Flags: []string{}}
	}
	rows := make([]lake.Reading, n)
	for i := range rows {
		s := i % sensors
		ts := start + int64(i/sensors)*step
		rows[i] = lake.Reading{
			Series: series[s], TS: ts, Value: float64(s) + float64(i/sensors)/1000, ReceivedAt: ts + 1000,
			IngestID: firstID + int64(i),
		}
	}
	return rows
}

// SQLEscape is a statement a SQL query must not be able to run, and a fragment of its refusal.
type SQLEscape struct {
	Name, SQL, Want string
}

// Query returns the statement with LAKE replaced by the lake's directory.
func (e SQLEscape) Query(lakeDir string) string { return strings.ReplaceAll(e.SQL, "LAKE", lakeDir) }

// SQLEscapes are the sandbox escapes the engine, HTTP and PostgreSQL protocol tests all try.
var SQLEscapes = []SQLEscape{
	{"read a file outside the lake", "SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"},
	{"read text outside the lake", "SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"},
	{"climb out of the lake", "SELECT * FROM read_parquet('LAKE/../../etc/passwd')", "file system operations are disabled"},
	{"glob outside the lake", "SELECT * FROM glob('/etc/*')", "file system operations are disabled"},
	{"copy to a file", "COPY (SELECT 1) TO '/tmp/sluice-escape.csv'", "COPY is not allowed"},
	{"copy into the lake", "COPY (SELECT 1) TO 'LAKE/evil.csv'", "COPY is not allowed"},
	{"attach a database file", "ATTACH '/tmp/sluice-escape.db'", "ATTACH is not allowed"},
	{"attach in memory", "ATTACH ':memory:' AS scratch", "ATTACH is not allowed"},
	{"install an extension", "INSTALL httpfs", "INSTALL is not allowed"},
	{"force install", "FORCE INSTALL httpfs", "INSTALL is not allowed"},
	{"load an extension", "LOAD httpfs", "LOAD is not allowed"},
	{"change a setting", "SET enable_external_access = true", "SET is not allowed"},
	{"change threads", "SET threads = 64", "SET is not allowed"},
	{"reset a setting", "RESET allowed_directories", "RESET is not allowed"},
	{"pragma setting", "PRAGMA threads = 64", "PRAGMA is not allowed"},
	{"pragma read", "PRAGMA version", "PRAGMA is not allowed"},
	{"export the database", "EXPORT DATABASE '/tmp/sluice-escape'", "EXPORT is not allowed"},
	{"create a table", "CREATE TABLE t AS SELECT 1", "read-only"},
	{"delete hot rows", "DELETE FROM _sluice.hot_rows", "read-only"},
	{"drop a view", "DROP VIEW readings", "read-only"},
	{"explain analyze a delete", "EXPLAIN ANALYZE DELETE FROM _sluice.hot_rows", "EXPLAIN is allowed only around a query"},
	{"explain analyze a CTE delete", "EXPLAIN ANALYZE WITH x AS (SELECT 1) DELETE FROM _sluice.hot_rows", "EXPLAIN is allowed only around a query"},
	{"two statements", "SELECT 1; DROP VIEW readings", "one statement at a time"},
	{"comment-hidden statement", "/* SELECT */ ATTACH ':memory:' AS x", "ATTACH is not allowed"},
	{"call a table function", "CALL pragma_version()", "CALL is not allowed"},
	{"query() smuggling", "SELECT * FROM query('ATTACH '':memory:'' AS y')", "SELECT"},
	{"begin a transaction", "BEGIN TRANSACTION", "transactions are not needed"},
	{"use another catalog", "USE system", "USE is not allowed"},
	{"checkpoint", "CHECKPOINT", "CHECKPOINT is not allowed"},
}
