package lakecheck

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // the independent Parquet reader
)

// Checker reads one lake's committed files with DuckDB.
type Checker struct {
	db   *sql.DB
	lake string
}

// Open returns a checker of the lake in lakeDir (an in-memory DuckDB).
func Open(lakeDir string) (*Checker, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	return &Checker{db: db, lake: lakeDir}, nil
}

// Close closes DuckDB.
func (c *Checker) Close() error { return c.db.Close() }

// scan returns a read_parquet over table's committed files, or "" when it has none.
func (c *Checker) scan(table string) (string, error) {
	files, err := Tables(c.lake, table)
	if err != nil || len(files) == 0 {
		return "", err
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f.Path, "'", "''") + "'"
	}
	return fmt.Sprintf("read_parquet([%s], hive_partitioning = true)", strings.Join(quoted, ",")), nil
}

func (c *Checker) ints(ctx context.Context, q string, dst ...*int64) error {
	if err := c.db.QueryRowContext(ctx, q).Scan(anys(dst)...); err != nil {
		return fmt.Errorf("lake check: %s: %w", q[:min(len(q), 120)], err)
	}
	return nil
}

func anys(p []*int64) []any {
	out := make([]any, len(p))
	for i := range p {
		out[i] = p[i]
	}
	return out
}

// Readings is what readings/ holds.
type Readings struct {
	Rows     int64 // rows
	Distinct int64 // distinct (sensor_id, metric, ts)
}

// Duplicates returns Rows - Distinct: readings stored more than once.
func (r Readings) Duplicates() int64 { return r.Rows - r.Distinct }

// Readings counts readings/, leaving out the sensors named in exclude (sentinels).
func (c *Checker) Readings(ctx context.Context, exclude ...string) (Readings, error) {
	src, err := c.scan("readings")
	if err != nil || src == "" {
		return Readings{}, err
	}
	var r Readings
	q := fmt.Sprintf("SELECT count(*), count(DISTINCT (sensor_id, metric, ts)) FROM %s%s", src, notIn(exclude))
	return r, c.ints(ctx, q, &r.Rows, &r.Distinct)
}

func notIn(sensors []string) string {
	if len(sensors) == 0 {
		return ""
	}
	q := make([]string, len(sensors))
	for i, s := range sensors {
		q[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return " WHERE sensor_id NOT IN (" + strings.Join(q, ",") + ")"
}

// Minutes compares readings_1m/ with readings/ minute by minute: it returns the minutes readings/
// has and how many of them, or of readings_1m/'s, disagree (a missing minute, another count, or
// another sum).
func (c *Checker) Minutes(ctx context.Context) (minutes, mismatched int64, err error) {
	rsrc, err := c.scan("readings")
	if err != nil || rsrc == "" {
		return 0, 0, err
	}
	msrc, err := c.scan("readings_1m")
	if err != nil {
		return 0, 0, err
	}
	if msrc == "" {
		msrc = "(SELECT NULL::VARCHAR AS sensor_id, NULL::VARCHAR AS metric, NULL::TIMESTAMPTZ AS minute, NULL::BIGINT AS count, NULL::DOUBLE AS sum WHERE false)"
	}
	q := fmt.Sprintf(`WITH r AS (SELECT sensor_id, metric, epoch_us(ts) // 60000000 AS m, count(*) AS n, sum(value) AS s FROM %s GROUP BY ALL),
g AS (SELECT sensor_id, metric, epoch_us(minute) // 60000000 AS m, sum(count) AS n, sum(sum) AS s FROM %s GROUP BY ALL)
SELECT count(r.n), count(*) FILTER (WHERE r.n IS DISTINCT FROM g.n OR abs(r.s - g.s) > 1e-6 * greatest(1, abs(r.s)))
FROM r FULL OUTER JOIN g USING (sensor_id, metric, m)`, rsrc, msrc)
	return minutes, mismatched, c.ints(ctx, q, &minutes, &mismatched)
}

// HasSensor reports whether readings/ holds a reading of sensor (a sentinel sent last).
func (c *Checker) HasSensor(ctx context.Context, sensor string) (bool, error) {
	src, err := c.scan("readings")
	if err != nil || src == "" {
		return false, err
	}
	var n int64
	q := fmt.Sprintf("SELECT count(*) FROM %s WHERE sensor_id = '%s'", src, strings.ReplaceAll(sensor, "'", "''"))
	return n > 0, c.ints(ctx, q, &n)
}

// Truth compares readings/ with a simulator truth file (one JSON line per acknowledged message).
type Truth struct {
	Expected   int64 // distinct (sensor_id, metric, ts) of fault-free truth lines: the readings that must be there
	Found      int64 // of those, present in readings/
	WrongValue int64 // of those found, stored with another value
	Lost       int64 // Expected - Found
}

// AgainstTruth checks that every fault-free message of the truth file is in readings/ with its value.
func (c *Checker) AgainstTruth(ctx context.Context, truthFile string) (Truth, error) {
	truth := fmt.Sprintf(`(SELECT DISTINCT sensor_id, metric, epoch_us(CAST(ts AS TIMESTAMPTZ)) AS us, value
		FROM read_json('%s', format = 'newline_delimited',
			columns = {seq: 'BIGINT', sensor_id: 'VARCHAR', metric: 'VARCHAR', ts: 'VARCHAR', value: 'DOUBLE', fault: 'VARCHAR', topic: 'VARCHAR'})
		WHERE fault = '')`, strings.ReplaceAll(truthFile, "'", "''"))
	var t Truth
	if err := c.ints(ctx, "SELECT count(*) FROM "+truth, &t.Expected); err != nil {
		return t, err
	}
	src, err := c.scan("readings")
	if err != nil {
		return t, err
	}
	if src == "" {
		t.Lost = t.Expected
		return t, nil
	}
	q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE r.values_ <> [t.value])
		FROM %s t JOIN (SELECT sensor_id, metric, epoch_us(ts) AS us, list(DISTINCT value) AS values_ FROM %s GROUP BY ALL) r
		USING (sensor_id, metric, us)`, truth, src)
	if err := c.ints(ctx, q, &t.Found, &t.WrongValue); err != nil {
		return t, err
	}
	t.Lost = t.Expected - t.Found
	return t, nil
}

// Count returns the rows of table's committed files.
func (c *Checker) Count(ctx context.Context, table string) (int64, error) {
	src, err := c.scan(table)
	if err != nil || src == "" {
		return 0, err
	}
	var n int64
	return n, c.ints(ctx, "SELECT count(*) FROM "+src, &n)
}

// QuarantineRow is one row of quarantine/.
type QuarantineRow struct {
	IngestID int64
	Topic    string
	Payload  []byte
	Reason   string
	Detail   string
}

// Quarantine returns every row of quarantine/, in ingest_id order.
func (c *Checker) Quarantine(ctx context.Context) ([]QuarantineRow, error) {
	src, err := c.scan("quarantine")
	if err != nil || src == "" {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, "SELECT ingest_id, coalesce(topic, ''), coalesce(payload, ''::BLOB), coalesce(reason, ''), coalesce(detail, '') FROM "+src+" ORDER BY ingest_id")
	if err != nil {
		return nil, fmt.Errorf("lake check: quarantine: %w", err)
	}
	defer rows.Close()
	var out []QuarantineRow
	for rows.Next() {
		var r QuarantineRow
		if err := rows.Scan(&r.IngestID, &r.Topic, &r.Payload, &r.Reason, &r.Detail); err != nil {
			return nil, fmt.Errorf("lake check: quarantine: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Raw is what raw/ holds.
type Raw struct {
	Rows             int64 // messages archived (redeliveries included)
	DistinctPayloads int64
}

// Raw counts raw/.
func (c *Checker) Raw(ctx context.Context) (Raw, error) {
	src, err := c.scan("raw")
	if err != nil || src == "" {
		return Raw{}, err
	}
	var r Raw
	return r, c.ints(ctx, "SELECT count(*), count(DISTINCT payload) FROM "+src, &r.Rows, &r.DistinctPayloads)
}

// ReadAll reads every committed file of table to the end (all columns), which fails on a damaged
// file: the "corrupts nothing" check.
func (c *Checker) ReadAll(ctx context.Context, table string) (int64, error) {
	src, err := c.scan(table)
	if err != nil || src == "" {
		return 0, err
	}
	var n, sum int64
	return n, c.ints(ctx, "SELECT count(*), coalesce(sum(hash(t) % 1024), 0)::BIGINT FROM "+src+" t", &n, &sum)
}
