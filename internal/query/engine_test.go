package query

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/testkit"
)

// day0 is 2026-11-22 23:58:00 UTC: test readings straddle midnight, so they span two partitions.
var day0 = time.Date(2026, 11, 22, 23, 58, 0, 0, time.UTC).UnixMicro()

func TestViewsReadCommittedFiles(t *testing.T) {
	lk, u := testkit.TempLake(t)
	rc := testkit.NewCommitter(t, lk, lake.ReadingsSpec())
	all := testkit.Readings(3000, 10, day0, 1_000_000, 0) // 300 s: 120 on day one, 180 on day two
	rc.Commit(t, all[:1000], "decoder-p0", 999)
	rc.Commit(t, all[1000:], "decoder-p0", 2999)
	qc := testkit.NewCommitter(t, lk, lake.QuarantineSpec())
	qc.Commit(t, []lake.QuarantineRow{{IngestID: 7, ReceivedAt: day0, Source: "mqtt", Topic: "t", Payload: []byte("{"), Reason: "bad_json", Detail: "x"}}, "decoder-p0", 7)

	e := openEngine(t, u, testConfig(), Static())
	cases := []struct {
		name string
		q    string
		want int64
	}{
		{"all readings", "SELECT count(*) FROM readings", 3000},
		{"first day by partition", "SELECT count(*) FROM readings WHERE date = DATE '2026-11-22'", 1200},
		{"second day by time", "SELECT count(*) FROM readings WHERE ts >= TIMESTAMPTZ '2026-11-23 00:00:00+00'", 1800},
		{"one sensor", "SELECT count(*) FROM readings WHERE sensor_id = 'sensor-003'", 300},
		{"distinct ingest ids", "SELECT count(DISTINCT ingest_id) FROM readings", 3000},
		{"quarantine", "SELECT count(*) FROM quarantine WHERE reason = 'bad_json'", 1},
		{"raw table absent yet", "SELECT count(*) FROM raw", 0},
		{"latest: one row per sensor", "SELECT count(*) FROM latest", 10},
		{"latest value is the newest", "SELECT count(*) FROM latest WHERE ts = TIMESTAMPTZ '2026-11-23 00:02:59+00' AND value = sensor_id[8:]::INT + 0.299", 10},
		{"unregistered sensors listed", "SELECT count(*) FROM sensors WHERE NOT registered AND last_seen IS NOT NULL", 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := count(t, e, c.q); got != c.want {
				t.Fatalf("%s = %d, want %d", c.q, got, c.want)
			}
		})
	}
	rows := rowsOf(t, e, "SELECT ts, value, unit, flags, date FROM readings WHERE ingest_id = 15")
	if len(rows) != 1 {
		t.Fatalf("ingest_id 15: %v", rows)
	}
	ts, _ := rows[0][0].(time.Time)
	if !ts.Equal(time.UnixMicro(day0+1_000_000)) || ts.Location() != time.UTC {
		t.Fatalf("ts = %v, want %v UTC", rows[0][0], time.UnixMicro(day0+1_000_000).UTC())
	}
	if rows[0][1] != 5.001 || rows[0][2] != "C" {
		t.Fatalf("value, unit = %v, %v", rows[0][1], rows[0][2])
	}
	if l, ok := rows[0][3].([]any); !ok || len(l) != 0 {
		t.Fatalf("flags = %#v, want an empty list", rows[0][3])
	}
	if d, _ := rows[0][4].(time.Time); d.Format(time.DateOnly) != "2026-11-22" {
		t.Fatalf("date = %v", rows[0][4])
	}
}

func TestUncommittedFilesAreInvisible(t *testing.T) {
	lk, u := testkit.TempLake(t)
	rc := testkit.NewCommitter(t, lk, lake.ReadingsSpec())
	rc.Commit(t, testkit.Readings(100, 10, day0, 1_000_000, 0), "decoder-p0", 99)
	// A file written but never committed (a crash between the two): copy a committed one.
	files, _, err := lk.Files(context.Background(), "readings")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	dir, _ := LocalLakeDir(u)
	data, err := os.ReadFile(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, filepath.Dir(files[0]), "part-99999999999999999999-orphan.parquet")
	if err := os.WriteFile(orphan, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, u, testConfig(), Static())
	if got := count(t, e, "SELECT count(*) FROM readings"); got != 100 {
		t.Fatalf("count = %d, want 100 (the uncommitted file must not be read)", got)
	}
}

func TestViewsFollowOtherWriters(t *testing.T) {
	lk, u := testkit.TempLake(t)
	rc := testkit.NewCommitter(t, lk, lake.ReadingsSpec())
	e := openEngine(t, u, testConfig())
	if got := count(t, e, "SELECT count(*) FROM readings"); got != 0 {
		t.Fatalf("empty lake: count = %d", got)
	}
	rc.Commit(t, testkit.Readings(500, 5, day0, 1_000_000, 0), "other-p0", 499)
	testkit.Eventually(t, 5*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM readings") == 500 }, "the poller did not pick up the commit")
	testkit.Eventually(t, 5*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM latest") == 5 }, "latest did not follow")
	// A dataset the engine has never heard of appears as a view of its directory's name.
	type minute struct {
		SensorID string  `parquet:"sensor_id"`
		Minute   int64   `parquet:"minute,timestamp(microsecond:utc)"`
		Mean     float64 `parquet:"mean"`
	}
	spec := lake.Spec[minute]{Name: "quality_1m", Partitioning: lake.ByDate, Time: func(m *minute) int64 { return m.Minute },
		Seq: func(m *minute) int64 { return m.Minute }, Size: func(*minute) int64 { return 40 }}
	mc := testkit.NewCommitter(t, lk, spec)
	mc.Commit(t, []minute{{"a", day0, 1.5}, {"b", day0, 2.5}}, "windows-p0", 1)
	testkit.Eventually(t, 5*time.Second, func() bool {
		rows, err := tryRows(e, "SELECT sum(mean), min(date)::VARCHAR FROM quality_1m")
		return err == nil && len(rows) == 1 && rows[0][0] == 4.0 && rows[0][1] == "2026-11-22"
	}, "quality_1m did not appear as a view")
}

func TestOnlyLocalLakes(t *testing.T) {
	_, err := Open(context.Background(), "s3://bucket/lake", testConfig())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "httpfs") || !strings.Contains(err.Error(), "file://") {
		t.Fatalf("Open(s3://) = %v, want ErrUnavailable explaining httpfs and file://", err)
	}
}

// TestTimeBucketMatchesDuckDB: the engine's time_bucket gives DuckDB's own buckets for every width
// and time tried, through leap years, DST dates (irrelevant in UTC, which the session uses) and
// times before the origin.
func TestTimeBucketMatchesDuckDB(t *testing.T) {
	_, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), Static())
	rows := rowsOf(t, e, `SELECT count(*), count(*) FILTER (WHERE time_bucket(w, ts) IS DISTINCT FROM system.main.time_bucket(w, ts))
FROM (SELECT TIMESTAMPTZ '1969-12-31 23:59:59.5+00' + INTERVAL (i * 7919) SECOND + INTERVAL (i % 997) MICROSECOND AS ts FROM range(20000) r(i))
CROSS JOIN (VALUES (INTERVAL 1 SECOND), (INTERVAL 7 MINUTE), (INTERVAL 1 MINUTE), (INTERVAL 1 HOUR), (INTERVAL 90 MINUTE),
                   (INTERVAL 1 DAY), (INTERVAL 7 DAY), (INTERVAL 1 MONTH), (INTERVAL 1 YEAR), (INTERVAL 250 MILLISECOND)) v(w)`)
	if rows[0][0] != int64(200000) || rows[0][1] != int64(0) {
		t.Fatalf("compared %v buckets, %v differ", rows[0][0], rows[0][1])
	}
	// Other types give the same instants; with two arguments the type is TIMESTAMP WITH TIME ZONE.
	if got := rowsOf(t, e, "SELECT time_bucket(INTERVAL 1 DAY, DATE '2026-11-24')::VARCHAR, time_bucket(INTERVAL 1 HOUR, TIMESTAMP '2026-11-24 10:13:00', TIMESTAMP '2026-11-24 00:30:00')::VARCHAR"); got[0][0] != "2026-11-24 00:00:00+00" || got[0][1] != "2026-11-24 09:30:00" {
		t.Fatalf("other types: %v", got)
	}
}

// TestLatestIndexFoldsInBatches: a commit's file is not folded into the latest index at once; the
// latest view reads it itself meanwhile, so it is exact; with indexBatch files waiting they are
// folded, and so is a single file that has waited indexDelay.
func TestLatestIndexFoldsInBatches(t *testing.T) {
	lk, u := testkit.TempLake(t)
	cfg := testConfig()
	cfg.RefreshInterval = 10 * time.Millisecond
	e := openEngine(t, u, cfg)
	rc := testkit.NewCommitter(t, lk, lake.ReadingsSpec())
	waiting := func() int {
		e.refreshMu.Lock()
		defer e.refreshMu.Unlock()
		return len(e.unindexed)
	}
	for i := range indexBatch - 1 {
		first := int64(i * 5)
		rc.Commit(t, testkit.Readings(5, 5, day0+int64(i)*1_000_000, 1_000_000, first), "other-p0", first+4)
		e.Refresh(context.Background())
		// Newest reading of sensor-001 so far: value 1 at day0 + i s.
		if got := count(t, e, "SELECT count(*) FROM latest WHERE sensor_id = 'sensor-001' AND epoch_us(ts) = ? AND value = 1", day0+int64(i)*1_000_000); got != 1 {
			t.Fatalf("after commit %d the latest view misses sensor-001's newest reading", i)
		}
	}
	time.Sleep(100 * time.Millisecond) // ten refresh intervals: the indexer looked and waited
	if n := waiting(); n != indexBatch-1 {
		t.Fatalf("%d files wait for the index, want %d (fewer than indexBatch, none older than indexDelay)", n, indexBatch-1)
	}
	last := int64((indexBatch - 1) * 5)
	rc.Commit(t, testkit.Readings(5, 5, day0+int64(indexBatch-1)*1_000_000, 1_000_000, last), "other-p0", last+4)
	e.Refresh(context.Background())
	testkit.Eventually(t, 5*time.Second, func() bool { return waiting() == 0 }, "%d files still wait with indexBatch of them committed", waiting())
	if got := count(t, e, "SELECT count(*) FROM latest"); got != 5 {
		t.Fatalf("latest = %d rows after folding, want 5", got)
	}
	// One more file waits until it is indexDelay old.
	e.refreshMu.Lock()
	e.setUnindexed([]string{"x"}, time.Now())
	since := e.unindexedSince
	e.refreshMu.Unlock()
	if e.indexDue(since.Add(indexDelay - time.Millisecond)) {
		t.Fatal("one file due before indexDelay")
	}
	if !e.indexDue(since.Add(indexDelay)) {
		t.Fatal("one file not due after indexDelay")
	}
	e.refreshMu.Lock()
	e.setUnindexed(nil, time.Now())
	e.refreshMu.Unlock()
}
