package query

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/sluice-project/sluice/internal/sensor"
)

// The latest view: the newest reading per (sensor_id, metric). Scanning every readings file for it
// would take a second per day of data at 1,000 sensors, so the engine keeps an index: a table with
// one row per (sensor_id, metric) holding the newest reading of the files folded into it so far. The
// view combines that table with the files not folded in yet (scanned by the view itself) and the hot
// rows, so it is exact at every moment; the indexer folds new files in the background, in batches
// (see indexDelay), at low priority, and swaps the view in the same transaction. sluice query --lake
// (Static) folds nothing: its latest view scans every file.

const latestIndexDDL = `CREATE TABLE _sluice.latest_index (sensor_id VARCHAR, metric VARCHAR, ts TIMESTAMPTZ,
 value DOUBLE, unit VARCHAR, received_at TIMESTAMPTZ)`

const latestCols = "sensor_id, metric, ts, value, unit, received_at"

// latestViewSQL defines the latest view over the index, the unindexed files and (with hot) the hot
// rows. One row per (sensor_id, metric); among equal timestamps the row kept is arbitrary.
func latestViewSQL(unindexed []string, hot bool) string {
	parts := []string{"SELECT " + latestCols + " FROM _sluice.latest_index"}
	if len(unindexed) > 0 {
		parts = append(parts, "SELECT "+latestCols+" FROM "+parquetScan(unindexed, nil, nil))
	}
	if hot {
		parts = append(parts, "SELECT "+latestCols+" FROM "+hotTableName)
	}
	return `CREATE OR REPLACE VIEW latest AS
SELECT sensor_id, metric, last.ts AS ts, last.value AS value, last.unit AS unit, last.received_at AS received_at
FROM (SELECT sensor_id, metric, max_by({'ts': ts, 'value': value, 'unit': unit, 'received_at': received_at}, ts) AS last
      FROM (` + strings.Join(parts, "\n UNION ALL ") + `) GROUP BY sensor_id, metric)`
}

// indexBatch bounds the files folded in one step, so the view swap that ends it is never held back
// long by a large scan.
const indexBatch = 8

// indexDelay: the indexer folds files in once indexBatch are waiting, or the oldest has waited this
// long. Each step rebuilds the index table, so folding every commit on its own cost ~9% of sluice's
// CPU at one commit a second (profile of sluice run --broker on Mosquitto, 10,000 sensors, QoS 1);
// meanwhile the view scans those files itself, so it stays exact.
const indexDelay = 10 * time.Second

// indexDue reports whether the indexer should fold files in now.
func (e *Engine) indexDue(now time.Time) bool {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	return len(e.unindexed) >= indexBatch || (len(e.unindexed) > 0 && now.Sub(e.unindexedSince) >= indexDelay)
}

// setUnindexed records the files the latest view scans itself, and since when some have waited.
// Caller holds refreshMu.
func (e *Engine) setUnindexed(files []string, now time.Time) {
	if len(files) == 0 {
		e.unindexedSince = time.Time{}
	} else if e.unindexedSince.IsZero() {
		e.unindexedSince = now
	}
	e.unindexed = files
}

// indexLoop folds unindexed readings files into the latest index until ctx is done.
func (e *Engine) indexLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.RefreshInterval)
	defer t.Stop()
	for {
		for e.indexDue(time.Now()) {
			n, err := e.indexOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					e.logger.Warn("query engine: indexing the latest readings failed; the latest view scans those files itself meanwhile", "err", err)
				}
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// indexOnce folds up to indexBatch unindexed files into the index and returns how many it folded.
// The scan runs at low priority on a connection of its own, into a temporary table; only the merge
// and the view swap hold refreshMu.
func (e *Engine) indexOnce(ctx context.Context) (int, error) {
	e.refreshMu.Lock()
	batch := append([]string(nil), e.unindexed[:min(len(e.unindexed), indexBatch)]...)
	e.refreshMu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	scan := "CREATE OR REPLACE TEMP TABLE latest_batch AS SELECT sensor_id, metric, last.ts AS ts, last.value AS value, last.unit AS unit, last.received_at AS received_at " +
		"FROM (SELECT sensor_id, metric, max_by({'ts': ts, 'value': value, 'unit': unit, 'received_at': received_at}, ts) AS last FROM " +
		parquetScan(batch, nil, nil) + " GROUP BY sensor_id, metric)"
	_, err = conn.ExecContext(ctx, scan)
	if err != nil {
		return 0, fmt.Errorf("scan %d files: %w", len(batch), err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS temp.latest_batch")

	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	ts := e.tables[ViewReadings]
	if ts == nil {
		return 0, nil
	}
	live := map[string]bool{}
	for _, f := range ts.files {
		live[f] = true
	}
	var rest []string
	done := map[string]bool{}
	for _, f := range batch {
		done[f] = true
	}
	for _, f := range e.unindexed {
		if !done[f] {
			rest = append(rest, f)
		}
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	for _, s := range []string{
		"CREATE OR REPLACE TABLE _sluice.latest_index AS SELECT sensor_id, metric, last.ts AS ts, last.value AS value, last.unit AS unit, last.received_at AS received_at " +
			"FROM (SELECT sensor_id, metric, max_by({'ts': ts, 'value': value, 'unit': unit, 'received_at': received_at}, ts) AS last FROM (" +
			"SELECT " + latestCols + " FROM _sluice.latest_index UNION ALL SELECT " + latestCols + " FROM temp.latest_batch) GROUP BY sensor_id, metric)",
		latestViewSQL(rest, ts.hot != nil),
	} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	for _, f := range batch {
		if live[f] {
			e.indexed[f] = true
		}
	}
	e.setUnindexed(rest, time.Now())
	e.m.indexedFiles.Add(float64(len(batch)))
	return len(batch), nil
}

// The registry: the newest version archived in the lake's sensors/ table, one row per sensor.
const registryDDL = `CREATE TABLE _sluice.registry (sensor_id VARCHAR, type VARCHAR, unit VARCHAR, min DOUBLE,
 max DOUBLE, expected_interval INTERVAL, description VARCHAR, lat DOUBLE, lng DOUBLE, registry_digest VARCHAR)`

// registryNext is where a new registry version is loaded before it replaces the registry's rows.
const registryNext = "_sluice.registry_next"

const registryNextDDL = "CREATE TABLE " + registryNext + " AS SELECT * FROM _sluice.registry LIMIT 0"

// sensorsViewSQL: every sensor of the current registry, and every sensor seen in readings that the
// registry does not know (registered false), with when it was last seen and the metrics it reports.
const sensorsViewSQL = `CREATE OR REPLACE VIEW sensors AS
SELECT coalesce(r.sensor_id, l.sensor_id) AS sensor_id, r.sensor_id IS NOT NULL AS registered, r.type, r.unit,
       r.min, r.max, r.expected_interval, r.description, r.lat, r.lng, l.last_seen, l.metrics, r.registry_digest
FROM _sluice.registry r
FULL OUTER JOIN (SELECT sensor_id, max(ts) AS last_seen, list(metric ORDER BY metric) AS metrics FROM latest GROUP BY sensor_id) l
  ON r.sensor_id = l.sensor_id`

// registryStatements loads the newest registry in ts (the sensors/ table) into the staging table
// _sluice.registry_next and returns the statements that make it the registry, run by the caller in
// the transaction that redefines the views. The staging table is filled with DuckDB's appender, not
// INSERT … VALUES statements: DuckDB's parser took 34 s for 100,000 sensors in 100 statements (the SQL
// engine stayed unavailable, and the hot rows waiting for it held 200 MiB), the appender 0.2 s.
// Caller holds refreshMu.
func (e *Engine) registryStatements(ctx context.Context, ts *tableState) ([]string, error) {
	if len(ts.files) == 0 {
		return nil, nil
	}
	reg, digest, err := e.newestRegistry(ctx, ts)
	if err != nil {
		return nil, err
	}
	if _, err := e.admin.ExecContext(ctx, "DELETE FROM "+registryNext); err != nil {
		return nil, fmt.Errorf("load the registry %s: %w", digest, err)
	}
	err = e.admin.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "_sluice", "registry_next")
		if err != nil {
			return err
		}
		for _, s := range reg.Sensors() {
			var minV, maxV, lat, lng, iv driver.Value
			if s.HasRange {
				minV, maxV = s.Min, s.Max
			}
			if s.HasLocation {
				lat, lng = s.Lat, s.Lng
			}
			if s.Interval > 0 {
				iv = duckdb.Interval{Micros: s.Interval.Microseconds()}
			}
			if err := a.AppendRow(s.ID, nullText(s.Type), nullText(s.Unit), minV, maxV, iv, nullText(s.Description), lat, lng, digest); err != nil {
				_ = a.Close()
				return fmt.Errorf("sensor %q: %w", s.ID, err)
			}
		}
		return a.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("load the registry %s: %w", digest, err)
	}
	return []string{"DELETE FROM _sluice.registry", "INSERT INTO _sluice.registry SELECT * FROM " + registryNext}, nil
}

// newestRegistry returns the newest registry version in the sensors/ files: the caller's (WithRegistry)
// when it holds that digest, else parsed from the version's raw bytes.
func (e *Engine) newestRegistry(ctx context.Context, ts *tableState) (*sensor.Registry, string, error) {
	scan := parquetScan(ts.files, nil, nil)
	var digest string
	if err := e.admin.QueryRowContext(ctx, "SELECT digest FROM "+scan+" ORDER BY loaded_at DESC LIMIT 1").Scan(&digest); err != nil {
		return nil, "", fmt.Errorf("read the newest registry: %w", err)
	}
	if e.opts.registry != nil {
		if reg := e.opts.registry(digest); reg != nil && reg.Digest() == digest {
			return reg, digest, nil
		}
	}
	var raw []byte
	if err := e.admin.QueryRowContext(ctx, "SELECT raw FROM "+scan+" WHERE digest = ? LIMIT 1", digest).Scan(&raw); err != nil {
		return nil, "", fmt.Errorf("read the newest registry %s: %w", digest, err)
	}
	reg, err := sensor.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("parse the newest registry %s: %w", digest, err)
	}
	return reg, digest, nil
}

// nullText is s, or NULL when empty.
func nullText(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}
