package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/sluice-project/sluice/internal/lake"
)

// Hot rows: the readings the decoder has processed but not yet committed to a lake file. They live
// in a DuckDB table that the readings view reads beside the committed files. The decoder hands them
// over with AddReadings (a copy into a Go slice under a mutex); the hot writer goroutine appends them
// to the table at most every HotFlushInterval, and before each query runs (sync), and each flush is
// one DuckDB transaction, after which every new query sees them. A query therefore sees every reading
// the decoder handed over before it started, however long the interval.
//
// Committing a file and dropping its rows from the hot set is one DuckDB transaction (see
// Engine.apply): the view's file list is replaced and the hot rows the commit covers are deleted
// together, so a query (one snapshot) counts each reading exactly once. Which rows a commit covers is
// read from the Delta log itself: the txn action of the decoder's appId for a partition is the last
// log offset committed, and hot rows of that partition at or below it are deleted. The same rule
// serves commits this process made (CommittedReadings) and ones found by polling, in either order.
//
// Rows appended to DuckDB take ~130 bytes each until a CHECKPOINT compresses them into the engine's
// catalog (see catalogName): so the writer checkpoints once checkpointRows rows were appended since
// the last one, which also frees what committed (deleted) hot rows took. 1M rows of 100,000 sensors:
// 129 MB before, 8 MB after; 100,000 rows take ~40 ms to compress.

// The hot rows are two tables and a view: hot_rows holds what differs per reading (times as
// microseconds since the epoch) and a series number; hot_series what readings share (lake.Series:
// sensor, metric, unit, flags) and their log partition, once per series and partition; hot_readings
// joins them into the readings columns (times as TIMESTAMPTZ, date derived from ts), and is what the
// views read. What a row costs grows with the columns it fills: appending 3 strings and a list a
// reading cost 3.5 µs, a series number 1.5 µs; five numbers instead of seven (no date, no
// partition, times as BIGINT: duckdb-go converts every time.Time through the calendar) cost
// 1.2-1.3 µs where the seven took 1.4-1.8 in the same session (512-row batches, BenchmarkHotFlush).
//
// hot_rows is filled by one INSERT a flush from a table function (hotFeed) that hands DuckDB the
// flush's five columns a chunk of 2,048 rows at a time, instead of an appender: AppendRow boxes
// every value and converts it alone, ~1.1 µs a row, where the chunks take ~0.35 µs (16,384-row
// flushes; a flush also has a fixed cost of ~0.5-0.9 ms, DuckDB's statement and commit, either way).
// The few new series a flush brings still go through an appender to hot_series.
const (
	hotTableName   = "_sluice.hot_readings"
	hotRowsTable   = "_sluice.hot_rows"
	hotSeriesTable = "_sluice.hot_series"
)

// checkpointRows is how many hot rows are appended between checkpoints: one DuckDB row group.
const checkpointRows = 122_880

var hotDDL = []string{
	`CREATE TABLE ` + hotSeriesTable + ` (series INTEGER, sensor_id VARCHAR, metric VARCHAR, unit VARCHAR, flags VARCHAR[], _partition INTEGER)`,
	`CREATE TABLE ` + hotRowsTable + ` (series INTEGER, ts BIGINT, value DOUBLE, received_at BIGINT, ingest_id BIGINT)`,
	`CREATE VIEW ` + hotTableName + ` AS SELECT s.sensor_id, s.metric, make_timestamptz(r.ts) AS ts, r.value, s.unit,
 make_timestamptz(r.received_at) AS received_at, r.ingest_id, s.flags, CAST(make_timestamp(r.ts) AS DATE) AS date, s._partition
 FROM ` + hotRowsTable + ` r JOIN ` + hotSeriesTable + ` s ON r.series = s.series`,
}

// minSeriesCleanup: the series numbers are pruned (those no hot row uses any more) once this many,
// and twice as many as after the last pruning, were handed out.
const minSeriesCleanup = 1 << 16

// hotColumnSet are the readings columns the hot table has.
var hotColumnSet = map[string]bool{
	"sensor_id": true, "metric": true, "ts": true, "value": true, "unit": true, "received_at": true,
	"ingest_id": true, "flags": true, "date": true,
}

type hotRow struct {
	partition int32
	row       lake.Reading
}

// hotSeries is what a hot_series row stands for: a Series in a log partition.
type hotSeries struct {
	series    *lake.Series
	partition int32
}

type hotReadings struct {
	e     *Engine
	appID func(partition int32) string

	mu         sync.Mutex // guards pending, spare, flushing, partitions
	pending    []hotRow
	flushing   bool // a flush took rows out of pending and has not finished
	spare      []hotRow
	partitions map[int32]bool
	wake       chan struct{}

	writeMu   sync.Mutex // held while appending to or deleting from the table
	conn      *sql.Conn
	feed      *hotFeed            // hot_rows, through INSERT … SELECT * FROM hotFeedFunction
	insert    *sql.Stmt           // that INSERT
	seriesApp *duckdb.Appender    // hot_series
	series    map[hotSeries]int32 // series number of each Series and partition in hot_series (under writeMu)
	nextID    int32
	pruneAt   int // prune series numbers when series holds this many
	rows      int // rows in the table (under writeMu)
	appended  int // rows appended since the last checkpoint (under writeMu)
	lastFlush time.Time

	observe func(received int64, visible time.Time) // tests: every row's visibility
}

func newHotReadings(ctx context.Context, e *Engine, appID func(int32) string) (*hotReadings, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("hot rows: %w", err)
	}
	h := &hotReadings{e: e, appID: appID, conn: conn, partitions: map[int32]bool{}, wake: make(chan struct{}, 1),
		series: map[hotSeries]int32{}, pruneAt: minSeriesCleanup}
	feed, err := registerHotFeed(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("hot rows: %w", err)
	}
	h.feed = feed
	if h.insert, err = conn.PrepareContext(ctx, "INSERT INTO "+hotRowsTable+" SELECT * FROM "+hotFeedFunction+"(?)"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("hot rows: %w", err)
	}
	if err := h.openAppender(); err != nil {
		conn.Close()
		return nil, err
	}
	return h, nil
}

func (h *hotReadings) openAppender() error {
	return h.conn.Raw(func(dc any) error {
		s, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "_sluice", "hot_series")
		if err != nil {
			return fmt.Errorf("hot rows: series appender: %w", err)
		}
		h.seriesApp = s
		return nil
	})
}

// add queues rows of partition p. Called from the decoder's goroutine.
func (h *hotReadings) add(p int32, rows []lake.Reading) {
	if len(rows) == 0 {
		return
	}
	h.mu.Lock()
	h.partitions[p] = true
	for _, r := range rows {
		h.pending = append(h.pending, hotRow{partition: p, row: r})
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run appends queued rows until ctx is done, at most every interval.
func (h *hotReadings) run(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		h.writeMu.Lock()
		wait := time.Until(h.lastFlush.Add(interval))
		h.writeMu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		h.writeMu.Lock()
		if err := h.flushLocked(); err != nil {
			h.warnFlush(err)
		}
		h.writeMu.Unlock()
	}
}

func (h *hotReadings) warnFlush(err error) {
	h.e.logger.Warn("hot rows: appending to the SQL engine failed; they become queryable when their file is committed", "err", err)
}

// sync appends every row queued before it was called, so that a query starting after it sees them
// (Engine.Prepare calls it first): between queries rows wait up to HotFlushInterval, which then only
// bounds how many wait (DuckDB's fixed cost per flush, ~0.5-0.9 ms, is paid that much less often),
// not how stale an answer is.
func (h *hotReadings) sync() error {
	h.mu.Lock()
	idle := len(h.pending) == 0 && !h.flushing
	h.mu.Unlock()
	if idle {
		return nil
	}
	h.writeMu.Lock() // after a flush under way, which took rows out of pending
	defer h.writeMu.Unlock()
	return h.flushLocked()
}

// flushLocked appends every queued row and commits them. Caller holds writeMu.
func (h *hotReadings) flushLocked() error {
	h.mu.Lock()
	batch := h.pending
	h.pending = h.spare[:0]
	h.flushing = len(batch) > 0
	h.mu.Unlock()
	defer func() {
		clear(batch)
		h.mu.Lock()
		h.flushing = false
		if cap(batch) <= 1<<20 {
			h.spare = batch[:0]
		}
		h.mu.Unlock()
	}()
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	if len(h.series) >= h.pruneAt {
		if err := h.pruneSeries(); err != nil {
			return err
		}
	}
	var added []hotSeries // new in hot_series with this flush
	fail := func(what string, err error) error {
		for _, s := range added {
			delete(h.series, s)
		}
		h.resetAppender()
		return fmt.Errorf("%s: %w", what, err)
	}
	cols := h.feed.reset(len(batch))
	for i := range batch {
		r := &batch[i].row
		key := hotSeries{r.Series, batch[i].partition}
		id, ok := h.series[key]
		if !ok {
			id = h.nextID
			h.nextID++
			h.series[key] = id
			added = append(added, key)
			s := r.Series
			var unit any
			if s.Unit != "" {
				unit = s.Unit
			}
			if err := h.seriesApp.AppendRow(id, s.SensorID, s.Metric, unit, s.FlagList(), key.partition); err != nil {
				return fail("append series", err)
			}
		}
		cols.add(id, r)
	}
	// Series first: a query between the two flushes sees a series without rows, never rows without
	// their series.
	if len(added) > 0 {
		if err := h.seriesApp.Flush(); err != nil {
			return fail("flush series", err)
		}
		added = nil
	}
	if err := h.feed.insert(h.insert); err != nil {
		return fail("insert", err)
	}
	now := time.Now()
	h.lastFlush = now
	h.rows += len(batch)
	h.appended += len(batch)
	h.e.m.hotRows.Set(float64(h.rows))
	h.e.m.hotFlushSeconds.Observe(now.Sub(start).Seconds())
	for i := range batch {
		lat := now.Sub(time.UnixMicro(batch[i].row.ReceivedAt))
		h.e.m.hotVisibility.Observe(lat.Seconds())
		if h.observe != nil {
			h.observe(batch[i].row.ReceivedAt, now)
		}
	}
	if h.appended >= checkpointRows {
		h.checkpoint()
	}
	return nil
}

// checkpoint compresses what was appended since the last checkpoint. DuckDB refuses while another
// transaction is writing (a commit's view change, the latest-value index); then the next flush tries
// again. Caller holds writeMu.
func (h *hotReadings) checkpoint() {
	start := time.Now()
	if _, err := h.conn.ExecContext(context.Background(), "CHECKPOINT"); err != nil {
		h.e.m.checkpoints.WithLabelValues("skipped").Observe(time.Since(start).Seconds())
		h.e.logger.Debug("hot rows: checkpoint skipped; retried after the next flush", "err", err)
		return
	}
	h.e.m.checkpoints.WithLabelValues("ok").Observe(time.Since(start).Seconds())
	h.appended = 0
}

// pruneSeries drops the series no hot row refers to any more (their readings were committed), from
// hot_series and from the numbering, so neither grows with every series ever seen. Caller holds
// writeMu.
func (h *hotReadings) pruneSeries() error {
	ctx := context.Background()
	if _, err := h.conn.ExecContext(ctx, "DELETE FROM "+hotSeriesTable+" WHERE series NOT IN (SELECT series FROM "+hotRowsTable+")"); err != nil {
		return fmt.Errorf("prune series: %w", err)
	}
	rows, err := h.conn.QueryContext(ctx, "SELECT series FROM "+hotSeriesTable)
	if err != nil {
		return fmt.Errorf("prune series: %w", err)
	}
	defer rows.Close()
	live := map[int32]bool{}
	for rows.Next() {
		var id int32
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("prune series: %w", err)
		}
		live[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("prune series: %w", err)
	}
	for s, id := range h.series {
		if !live[id] {
			delete(h.series, s)
		}
	}
	h.pruneAt = max(minSeriesCleanup, 2*len(h.series))
	return nil
}

// resetAppender drops the series appender, left in an unknown state by an error, and opens a new one.
func (h *hotReadings) resetAppender() {
	_ = h.seriesApp.Clear()
	_ = h.seriesApp.Close()
	if err := h.openAppender(); err != nil {
		h.e.logger.Error("hot rows: cannot reopen the appender", "err", err)
	}
}

// committedCond returns the condition matching the hot rows that txn's versions (per appId, as a
// table's Delta log holds them) say are committed ("" when none are).
func (h *hotReadings) committedCond(txn func(appID string) (int64, bool)) string {
	h.mu.Lock()
	parts := make([]int32, 0, len(h.partitions))
	for p := range h.partitions {
		parts = append(parts, p)
	}
	h.mu.Unlock()
	slices.Sort(parts)
	var conds []string
	for _, p := range parts {
		if v, ok := txn(h.appID(p)); ok {
			conds = append(conds, "(_partition = "+strconv.Itoa(int(p))+" AND ingest_id <= "+strconv.FormatInt(v, 10)+")")
		}
	}
	return strings.Join(conds, " OR ")
}

// deleteSQL returns the statement deleting the rows the log's txns say are committed ("" when
// none). Caller holds writeMu.
func (h *hotReadings) deleteSQL(txn func(appID string) (int64, bool)) string {
	c := h.committedCond(txn)
	if c == "" {
		return ""
	}
	// A hot row's partition is its series'.
	return "DELETE FROM " + hotRowsTable + " r USING " + hotSeriesTable + " s WHERE r.series = s.series AND (" + c + ")"
}

func (h *hotReadings) close() {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	if h.seriesApp != nil {
		_ = h.seriesApp.Close()
		_ = h.insert.Close()
		h.seriesApp, h.insert = nil, nil
	}
	_ = h.conn.Close()
}
