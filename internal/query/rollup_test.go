package query

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/pipeline"
	"github.com/sluice-project/sluice/internal/testkit"
)

// commitWithRollup commits rows as the decoder does: their minutes to readings_1m/ first, then the
// rows to readings/, both with the txn (decoder-p0, last).
func commitWithRollup(t *testing.T, rw *lake.Writer[lake.Reading], mw *lake.Writer[lake.Reading1mRow], rows []lake.Reading, last int64) {
	t.Helper()
	ctx := context.Background()
	for _, r := range rows {
		rw.Add(r)
	}
	b := rw.Seal()
	if _, err := mw.BatchOf(pipeline.Rollup1m(b.Rows(), nil)).Commit(ctx, "decoder-p0", last); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, "decoder-p0", last); err != nil {
		t.Fatal(err)
	}
}

func rollupWriters(t *testing.T, lk *lake.Lake) (*lake.Writer[lake.Reading], *lake.Writer[lake.Reading1mRow]) {
	t.Helper()
	rw, err := lake.NewWriter(context.Background(), lk, lake.ReadingsSpec(), lake.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	mw, err := lake.NewWriter(context.Background(), lk, lake.Readings1mSpec(), lake.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return rw, mw
}

// resampleFromReadings is the 1-minute resample computed from readings, which readings_1m must equal.
const resampleFromReadings = `SELECT sensor_id, metric, time_bucket(INTERVAL 1 MINUTE, ts) AS minute, count(*) AS count,
 avg(value) AS mean, min(value) AS min, max(value) AS max, arg_min(value, ts) AS first, arg_max(value, ts) AS last, date
FROM readings GROUP BY ALL`

// mismatches counts the minutes where readings_1m and the resample of readings differ (either
// way; means compared to 1e-9, as the sums are added in another order).
func mismatches(t *testing.T, e *Engine) int64 {
	return count(t, e, `WITH want AS (`+resampleFromReadings+`)
SELECT count(*) FROM want FULL OUTER JOIN readings_1m AS got USING (sensor_id, metric, minute)
WHERE got.count IS DISTINCT FROM want.count OR abs(got.mean - want.mean) > 1e-9 OR got.min IS DISTINCT FROM want.min
 OR got.max IS DISTINCT FROM want.max OR got.first IS DISTINCT FROM want.first OR got.last IS DISTINCT FROM want.last
 OR got.date IS DISTINCT FROM want.date OR abs(got.sum - want.mean * want.count) > 1e-6`)
}

// TestReadings1mMergesCommitsAndHotRows: minutes split across commits, and minutes partly in the
// hot rows, give the same count, mean, min, max, first and last as resampling readings, at every
// step; a commit moves rows from the hot part to the files without changing any minute.
func TestReadings1mMergesCommitsAndHotRows(t *testing.T) {
	lk, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID))
	rw, mw := rollupWriters(t, lk)
	// 7 sensors every 7 s from 23:58:00 to 00:02:54: 43 readings a sensor in 5 minutes over two days,
	// handed over in 4 parts whose boundaries fall inside minutes.
	rows := testkit.Readings(7*43, 7, day0, 7_000_000, 0)
	if got := count(t, e, "SELECT count(*) FROM readings_1m"); got != 0 {
		t.Fatalf("empty lake: readings_1m has %d rows", got)
	}
	cuts := []int{0, 7 * 5, 7 * 20, 7 * 31, len(rows)}
	for i := 0; i+1 < len(cuts); i++ {
		part := rows[cuts[i]:cuts[i+1]]
		e.AddReadings(0, part)
		want := int64(cuts[i+1])
		testkit.Eventually(t, 2*time.Second, func() bool {
			return count(t, e, "SELECT coalesce(sum(count), 0)::BIGINT FROM readings_1m") == want
		}, "part %d: hot rows never reached readings_1m", i)
		if n := mismatches(t, e); n != 0 {
			t.Fatalf("part %d, hot: %d minutes differ from resampling readings", i, n)
		}
		if i == len(cuts)-2 {
			break // the last part stays hot
		}
		commitWithRollup(t, rw, mw, part, int64(cuts[i+1]-1))
		e.CommittedReadings(context.Background(), 0, int64(cuts[i+1]-1))
		if n := mismatches(t, e); n != 0 {
			t.Fatalf("part %d, committed: %d minutes differ from resampling readings", i, n)
		}
		if got := count(t, e, "SELECT sum(count)::BIGINT FROM readings_1m"); got != want {
			t.Fatalf("part %d, committed: readings_1m counts %d readings, want %d", i, got, want)
		}
	}
	if got := count(t, e, "SELECT count(*) FROM readings_1m"); got != 7*5 {
		t.Fatalf("readings_1m has %d minutes, want 35 (7 sensors × 5 minutes)", got)
	}
	// One minute by hand: sensor-003 at 23:58 has readings at 0, 7, … 56 s: 9 readings with values
	// 3.000 … 3.008.
	got := rowsOf(t, e, `SELECT count, mean, min, max, first, last, sum, date::VARCHAR FROM readings_1m
WHERE sensor_id = 'sensor-003' AND minute = TIMESTAMPTZ '2026-11-22 23:58:00+00'`)
	if len(got) != 1 {
		t.Fatalf("sensor-003 23:58: %d rows, want 1", len(got))
	}
	r := got[0]
	if r[0].(int64) != 9 || r[2].(float64) != 3.000 || r[3].(float64) != 3.008 || r[4].(float64) != 3.000 || r[5].(float64) != 3.008 || r[7].(string) != "2026-11-22" {
		t.Fatalf("sensor-003 23:58 = %v, want count 9, min/first 3.000, max/last 3.008, date 2026-11-22", r)
	}
	if m := r[1].(float64); m < 3.004-1e-9 || m > 3.004+1e-9 {
		t.Fatalf("sensor-003 23:58 mean = %v, want 3.004", m)
	}
}

// TestReadings1mBetweenTheTwoCommits: the decoder commits readings_1m/ before readings/; a query in
// between (the poller may define the view then) must not count the hot rows readings_1m/ already
// holds.
func TestReadings1mBetweenTheTwoCommits(t *testing.T) {
	lk, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), WithHotReadings(decoderAppID), Static())
	_, mw := rollupWriters(t, lk)
	rows := testkit.Readings(100, 5, day0, 1_000_000, 0)
	e.AddReadings(0, rows)
	testkit.Eventually(t, 2*time.Second, func() bool { return count(t, e, "SELECT coalesce(sum(count), 0)::BIGINT FROM readings_1m") == 100 }, "hot rows never visible")
	if _, err := mw.BatchOf(pipeline.Rollup1m(rows[:60], nil)).Commit(context.Background(), "decoder-p0", 59); err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(context.Background()); err != nil { // what the poller does
		t.Fatal(err)
	}
	if got := count(t, e, "SELECT sum(count)::BIGINT FROM readings_1m"); got != 100 {
		t.Fatalf("readings_1m committed, readings not yet: counts %d readings, want 100", got)
	}
	if got := count(t, e, "SELECT count(*) FROM readings"); got != 100 {
		t.Fatalf("readings = %d, want 100", got)
	}
	if n := mismatches(t, e); n != 0 {
		t.Fatalf("%d minutes differ from resampling readings", n)
	}
}
