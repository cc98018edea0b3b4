package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/testkit"
)

func decoderAppID(p int32) string { return fmt.Sprintf("decoder-p%d", p) }

func TestHotRowsVisibleBeforeCommit(t *testing.T) {
	lk, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	w, err := lake.NewWriter(context.Background(), lk, lake.ReadingsSpec(), lake.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rows := testkit.Readings(250, 5, day0, 1_000_000, 0)
	e.AddReadings(0, rows[:200])
	testkit.Eventually(t, 2*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == 200 }, "hot rows never became visible")
	if got := count(t, e, "SELECT count(*) FROM latest"); got != 5 {
		t.Fatalf("latest over hot rows = %d rows, want 5", got)
	}
	// Commit the first 150 (offsets 0..149): those leave the hot set as their file arrives.
	for _, r := range rows[:150] {
		w.Add(r)
	}
	if _, err := w.Commit(context.Background(), "decoder-p0", 149); err != nil {
		t.Fatal(err)
	}
	e.CommittedReadings(context.Background(), 0, 149)
	if got := count(t, e, "SELECT count(*) FROM readings"); got != 200 {
		t.Fatalf("after the commit: count = %d, want 200", got)
	}
	if got := count(t, e, "SELECT count(*) FROM "+hotTableName); got != 50 {
		t.Fatalf("hot rows after committing 150 of 200 = %d, want 50", got)
	}
	// Another partition's rows are untouched by partition 0's txn.
	other := testkit.Readings(10, 5, day0, 1_000_000, 0) // same offsets, partition 1
	e.AddReadings(1, other)
	testkit.Eventually(t, 2*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == 210 }, "partition 1's hot rows never became visible")
	e.CommittedReadings(context.Background(), 0, 149)
	if got := count(t, e, "SELECT count(*) FROM "+hotTableName+" WHERE _partition = 1"); got != 10 {
		t.Fatalf("partition 1 hot rows = %d, want 10", got)
	}
}

// TestCountAcrossCommits hammers count(*) while readings arrive and are committed in many small
// commits (readings_1m/ first, then readings/, as the decoder does), reported both directly and by
// polling: every answer, from readings and from readings_1m, must be monotonic and at most what was
// handed over, none may count a reading twice, and the final answer is exact.
func TestCountAcrossCommits(t *testing.T) {
	lk, u := testkit.TempLake(t)
	cfg := testConfig()
	cfg.RefreshInterval = 7 * time.Millisecond // polling races the direct notification
	cfg.ExecutionShare = 1                     // as many queries as possible during the commits
	e := openEngine(t, u, cfg, WithHotReadings(decoderAppID))
	lcfg := lake.DefaultConfig()
	lcfg.RowGroupRows = 1024
	w, err := lake.NewWriter(context.Background(), lk, lake.ReadingsSpec(), lcfg)
	if err != nil {
		t.Fatal(err)
	}
	_, mw := rollupWriters(t, lk)
	const (
		batches   = 600
		perBatch  = 50
		perCommit = 3 // batches per commit: 200 commits
		total     = batches * perBatch
	)
	var mu sync.Mutex
	handed := 0
	done := make(chan struct{})
	var wg sync.WaitGroup
	type sample struct{ n, dup, n1m int64 }
	results := make([][]sample, 4)
	for q := range results {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				rows := rowsOf(t, e, "SELECT count(*), count(*) - count(DISTINCT ingest_id), (SELECT coalesce(sum(count), 0)::BIGINT FROM readings_1m) FROM readings")
				n, dup, n1m := rows[0][0].(int64), rows[0][1].(int64), rows[0][2].(int64)
				mu.Lock()
				limit := handed // read after the answer: it can only have grown meanwhile
				mu.Unlock()
				if n > int64(limit) || n1m > int64(limit) {
					t.Errorf("count %d (readings_1m: %d) exceeds the %d readings handed over", n, n1m, limit)
				}
				results[q] = append(results[q], sample{n, dup, n1m})
			}
		})
	}
	next := int64(0)
	var pending []lake.Reading
	for b := range batches {
		rows := testkit.Readings(perBatch, 7, day0+int64(b)*10_000_000, 1_000_000, next)
		next += perBatch
		mu.Lock()
		handed += perBatch
		mu.Unlock()
		e.AddReadings(0, rows)
		pending = append(pending, rows...)
		if (b+1)%perCommit == 0 {
			commitWithRollup(t, w, mw, pending, next-1)
			pending = pending[:0]
			e.CommittedReadings(context.Background(), 0, next-1)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == total }, "final count never reached %d", total)
	close(done)
	wg.Wait()
	commits := 0
	for q, s := range results {
		for i := range s {
			if s[i].dup != 0 {
				t.Fatalf("querier %d answer %d counted %d readings twice", q, i, s[i].dup)
			}
			if i > 0 && s[i].n < s[i-1].n {
				t.Fatalf("querier %d: count went from %d to %d", q, s[i-1].n, s[i].n)
			}
			if i > 0 && s[i].n1m < s[i-1].n1m {
				t.Fatalf("querier %d: readings_1m's count went from %d to %d", q, s[i-1].n1m, s[i].n1m)
			}
		}
		commits += len(s)
	}
	if commits < 50 {
		t.Fatalf("only %d queries ran during the commits; the test proves little", commits)
	}
	if got := count(t, e, "SELECT count(*) FROM readings"); got != total {
		t.Fatalf("final count = %d, want %d", got, total)
	}
	if got := count(t, e, "SELECT sum(count)::BIGINT FROM readings_1m"); got != total {
		t.Fatalf("final readings_1m count = %d, want %d", got, total)
	}
	if n := mismatches(t, e); n != 0 {
		t.Fatalf("%d minutes of readings_1m differ from resampling readings", n)
	}
	if got := count(t, e, "SELECT count(*) FROM "+hotTableName); got != 0 {
		t.Fatalf("%d hot rows left after the last commit, want 0", got)
	}
	if got := count(t, e, "SELECT count(DISTINCT ingest_id) FROM readings"); got != total {
		t.Fatalf("distinct ingest ids = %d, want %d", got, total)
	}
	t.Logf("%d queries during %d commits", commits, batches/perCommit)
}

// TestHotRowsCompressed: once checkpointRows hot rows were appended, the writer checkpoints and
// DuckDB keeps them compressed (a fraction of the ~130 bytes a row they take appended), and every
// row still reads back.
func TestHotRowsCompressed(t *testing.T) {
	_, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	const n = 2*checkpointRows + 1000
	rows := testkit.Readings(n, 10_000, day0, 1_000_000, 0)
	var sum float64
	for _, r := range rows {
		sum += r.Value
	}
	e.AddReadings(0, rows)
	testkit.Eventually(t, 10*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == n }, "hot rows never became visible")
	checkpoints := func(result string) uint64 {
		var m dto.Metric
		if err := e.m.checkpoints.WithLabelValues(result).(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	// The checkpoint follows the flush that made the rows visible.
	testkit.Eventually(t, 10*time.Second, func() bool { return checkpoints("ok") == 1 }, "%d checkpoints (%d skipped) after one flush of %d rows, want 1", checkpoints("ok"), checkpoints("skipped"), n)
	mem := count(t, e, "SELECT sum(memory_usage_bytes)::BIGINT FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'")
	perRow := float64(mem) / n
	t.Logf("hot rows in DuckDB after the checkpoint: %.1f bytes each", perRow)
	if perRow > 20 {
		t.Fatalf("hot rows take %.1f bytes each in DuckDB after the checkpoint, want at most 20 (compressed)", perRow)
	}
	rs := rowsOf(t, e, "SELECT sum(value), count(DISTINCT sensor_id) FROM readings")
	if got := rs[0][0].(float64); math.Abs(got-sum) > 1e-6*math.Abs(sum) || rs[0][1].(int64) != 10_000 {
		t.Fatalf("sum(value), sensors = %v, want %v and 10000", rs[0], sum)
	}
}

// TestHotSeries: hot rows hold a series number, and hot_series each Series once; once their readings
// are committed, series no hot row uses are pruned from both the table and the numbering.
func TestHotSeries(t *testing.T) {
	lk, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	rows := testkit.Readings(100, 5, day0, 1_000_000, 0) // 5 sensors, one Series each
	e.AddReadings(0, rows)
	testkit.Eventually(t, 2*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == 100 }, "hot rows never became visible")
	if got := count(t, e, "SELECT count(*) FROM "+hotSeriesTable); got != 5 {
		t.Fatalf("hot_series holds %d rows for 5 Series, want 5", got)
	}
	if got := count(t, e, "SELECT count(DISTINCT sensor_id) FROM readings WHERE unit = 'C' AND flags = []"); got != 5 {
		t.Fatalf("readings over hot rows show %d sensors with unit C and no flags, want 5", got)
	}
	testkit.NewCommitter(t, lk, lake.ReadingsSpec()).Commit(t, rows, "decoder-p0", 99)
	e.CommittedReadings(context.Background(), 0, 99)
	if got := count(t, e, "SELECT count(*) FROM "+hotRowsTable); got != 0 {
		t.Fatalf("%d hot rows after committing them all, want 0", got)
	}
	// The next flush prunes: 3 new Series (one flagged) take the place of the 5 committed ones.
	e.hot.writeMu.Lock()
	e.hot.pruneAt = 1
	e.hot.writeMu.Unlock()
	fresh := []lake.Reading{
		{Series: &lake.Series{SensorID: "new-1", Metric: "m"}, TS: day0, Value: 1, IngestID: 100},
		{Series: &lake.Series{SensorID: "new-2", Metric: "m", Unit: "bar"}, TS: day0, Value: 2, IngestID: 101},
		{Series: &lake.Series{SensorID: "new-2", Metric: "m", Unit: "bar", Flags: []string{"out_of_range"}}, TS: day0 + 1, Value: 99, IngestID: 102},
	}
	e.AddReadings(0, fresh)
	testkit.Eventually(t, 2*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings WHERE sensor_id LIKE 'new-%'") == 3 }, "new hot rows never became visible")
	e.hot.writeMu.Lock()
	numbered := len(e.hot.series)
	e.hot.writeMu.Unlock()
	if got := count(t, e, "SELECT count(*) FROM "+hotSeriesTable); got != 3 || numbered != 3 {
		t.Fatalf("after pruning: hot_series %d rows, %d numbered, want 3 and 3", got, numbered)
	}
	if got := count(t, e, "SELECT count(*) FROM readings WHERE sensor_id = 'new-2' AND unit = 'bar' AND flags = ['out_of_range'] AND value = 99"); got != 1 {
		t.Fatalf("the flagged reading reads back %d times, want once", got)
	}
	if got := count(t, e, "SELECT count(*) FROM readings"); got != 103 {
		t.Fatalf("readings = %d, want 103 (100 committed, 3 hot)", got)
	}
}

// TestHotRowsReadAsCommitted: a reading reads back the same through the readings view, every
// column, while it is a hot row (times stored as microseconds, date derived from ts, partition kept
// with the series) and once its file is committed; including times before 1970 and either side of
// midnight, whose date the derivation could get wrong.
func TestHotRowsReadAsCommitted(t *testing.T) {
	lk, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	midnight := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixMicro()
	s := &lake.Series{SensorID: "s-1", Metric: "pressure", Unit: "bar", Flags: []string{"out_of_range"}}
	bare := &lake.Series{SensorID: "s-2", Metric: "temperature"}
	rows := []lake.Reading{
		{Series: s, TS: midnight - 1, Value: 1.5, ReceivedAt: midnight + 7, IngestID: 0},
		{Series: s, TS: midnight, Value: -2.25, ReceivedAt: midnight + 8, IngestID: 1},
		{Series: bare, TS: -1, Value: 3, ReceivedAt: 123_456_789, IngestID: 2},
		{Series: bare, TS: -86_400_000_001, Value: 4, ReceivedAt: 1, IngestID: 3},
	}
	const q = "SELECT sensor_id, metric, ts, value, unit, received_at, ingest_id, flags, date, epoch_us(ts), epoch_us(received_at) FROM readings ORDER BY ingest_id"
	e.AddReadings(0, rows)
	testkit.Eventually(t, 2*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == 4 }, "hot rows never became visible")
	hot := fmt.Sprint(rowsOf(t, e, q))
	testkit.NewCommitter(t, lk, lake.ReadingsSpec()).Commit(t, rows, "decoder-p0", 3)
	e.CommittedReadings(context.Background(), 0, 3)
	if got := count(t, e, "SELECT count(*) FROM "+hotRowsTable); got != 0 {
		t.Fatalf("%d hot rows after committing them all, want 0", got)
	}
	committed := fmt.Sprint(rowsOf(t, e, q))
	if hot != committed {
		t.Fatalf("hot rows read\n%s\ncommitted rows read\n%s", hot, committed)
	}
	dates := rowsOf(t, e, "SELECT date::VARCHAR, epoch_us(ts) FROM readings ORDER BY ingest_id")
	want := []string{"2026-11-22", "2026-11-23", "1969-12-31", "1969-12-30"}
	for i, r := range dates {
		if r[0] != want[i] || r[1].(int64) != rows[i].TS {
			t.Fatalf("row %d: date %v, ts %v; want %s and %d", i, r[0], r[1], want[i], rows[i].TS)
		}
	}
}

// TestHotFeedChunks: a flush of several DuckDB chunks (2,048 rows each) and a partial one reaches
// hot_rows whole, every column of every row where it belongs; a smaller flush after it reuses the
// columns and adds exactly its own rows.
func TestHotFeedChunks(t *testing.T) {
	_, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	for k, n := range []int{2*2048 + 7, 300} {
		rows := testkit.Readings(n, 13, day0, 1_000_000, int64(k+1)*1_000_000)
		before := count(t, e, "SELECT count(*) FROM "+hotRowsTable)
		e.AddReadings(0, rows)
		e.hot.writeMu.Lock()
		err := e.hot.flushLocked()
		e.hot.writeMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if got := count(t, e, "SELECT count(*) FROM "+hotRowsTable); got != before+int64(n) {
			t.Fatalf("after a flush of %d: %d hot rows, want %d", n, got, before+int64(n))
		}
		for _, i := range []int{0, 1, 2047, 2048, 4095, 4096, n - 1} {
			if i >= n {
				continue
			}
			r := rows[i]
			got := rowsOf(t, e, "SELECT sensor_id, epoch_us(ts), value, epoch_us(received_at) FROM "+hotTableName+" WHERE ingest_id = ?", r.IngestID)
			want := []any{r.Series.SensorID, r.TS, r.Value, r.ReceivedAt}
			if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
				t.Fatalf("flush of %d, row %d (ingest_id %d): %v, want one row %v", n, i, r.IngestID, got, want)
			}
		}
	}
}

// TestHotFeedRefusesQueries: the feed function answers only the flush under way; a query calling it,
// with any key, gets an error and no rows.
func TestHotFeedRefusesQueries(t *testing.T) {
	_, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	e.AddReadings(0, testkit.Readings(10, 2, day0, 1_000_000, 0))
	testkit.Eventually(t, 2*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == 10 }, "hot rows never became visible")
	for _, q := range []string{"SELECT * FROM " + hotFeedFunction + "(0)", "SELECT * FROM " + hotFeedFunction + "(1)"} {
		rows, err := tryRows(e, q)
		if err == nil || !strings.Contains(err.Error(), "sluice's own") {
			t.Fatalf("%s: rows %v, error %v; want the feed's refusal", q, rows, err)
		}
	}
	// While a flush is under way only its key binds.
	f := e.hot.feed
	f.mu.Lock()
	f.key = 42
	f.mu.Unlock()
	if _, err := f.bind(nil, int64(41)); !errors.Is(err, errNoHotFeed) {
		t.Fatalf("bind with another key: %v, want errNoHotFeed", err)
	}
	if _, err := f.bind(nil, int64(42)); err != nil {
		t.Fatalf("bind with the flush's key: %v", err)
	}
}

// TestHotRowsSyncedByQuery: a query sees every reading handed over before it started, without waiting
// for the hot writer's interval (set far longer than the test here).
func TestHotRowsSyncedByQuery(t *testing.T) {
	lk, u := testkit.TempLake(t)
	if _, err := lake.NewWriter(context.Background(), lk, lake.ReadingsSpec(), lake.DefaultConfig()); err != nil {
		t.Fatal(err) // creates readings/
	}
	cfg := testConfig()
	cfg.HotFlushInterval = 10 * time.Second
	e := openEngine(t, u, cfg, WithHotReadings(decoderAppID))
	rows := testkit.Readings(300, 7, day0, 1_000_000, 0)
	from := 0
	for _, n := range []int{1, 120, 300} { // three hand-overs, each queried at once
		e.AddReadings(0, rows[from:n])
		if got := count(t, e, "SELECT count(*) FROM readings"); got != int64(n) {
			t.Fatalf("query right after handing over %d readings counted %d", n, got)
		}
		from = n
	}
	if got := count(t, e, "SELECT count(DISTINCT sensor_id) FROM readings"); got != 7 {
		t.Fatalf("%d sensors, want 7", got)
	}
}
