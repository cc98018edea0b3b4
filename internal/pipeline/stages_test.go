package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/config"
	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/lake"
	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/sensor"
)

// stagesRig is the archiver and the decoder over one in-memory log and one mem:// lake, as the app
// wires them.
type stagesRig struct {
	t   *testing.T
	log *memlog.Log
	lk  *lake.Lake
	reg *sensor.Registry

	flushRows int     // lake.flush_rows (0: the default)
	spool     int64   // lake.row_group_bytes (0: the default)
	hot       HotSink // the decoder's hot sink (nil: none)
}

func newRig(t *testing.T) *stagesRig {
	t.Helper()
	ctx := context.Background()
	lk, err := lake.Open(ctx, fmt.Sprintf("mem://stages-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	reg, err := sensor.Parse([]byte(`{"s1":{"type":"temperature","unit":"C","range":[0,45]}}`))
	if err != nil {
		t.Fatal(err)
	}
	return &stagesRig{t: t, log: memlog.New(), lk: lk, reg: reg}
}

func (r *stagesRig) publish(topic, payload string) {
	r.t.Helper()
	e := envelope.Envelope{ReceivedAt: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano(), Source: envelope.SourceMQTT, QoS: 1, Topic: topic, Payload: []byte(payload)}
	if err := r.log.Append(context.Background(), slog2.Entry{Value: e.AppendBinary(nil)}); err != nil {
		r.t.Fatal(err)
	}
}

// run starts both stages (a fresh process's worth: new writers, new decoder), lets them read the log
// to its end and commit, and returns.
func (r *stagesRig) run() {
	r.t.Helper()
	ctx := context.Background()
	cfg := lake.DefaultConfig()
	if r.flushRows > 0 {
		cfg.FlushRows = r.flushRows
	}
	if r.spool > 0 {
		cfg.RowGroupBytes = config.Bytes(r.spool)
	}
	arch, err := NewArchiver(ctx, r.lk, cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	dcfg := decode.DefaultConfig()
	dcfg.MaxFuture = 100 * 365 * 24 * time.Hour
	dec, err := NewDecoder(ctx, r.lk, cfg, dcfg, r.reg, DefaultDedupConfig(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if r.hot != nil {
		dec.SetHot(r.hot)
	}
	// Both groups are registered before either runs, as in the app: the log keeps what either needs.
	var runners []*Runner
	for _, st := range []struct {
		name  string
		stage Stage
	}{{ArchiverName, arch}, {DecoderName, dec}} {
		runner, err := NewRunner(st.name, r.log, st.stage, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			r.t.Fatal(err)
		}
		runners = append(runners, runner)
	}
	for _, runner := range runners {
		runner.Drain()
		if err := runner.Run(ctx); err != nil {
			r.t.Fatal(err)
		}
	}
}

func readTable[T any](t *testing.T, lk *lake.Lake, table string) []T {
	t.Helper()
	files, _, err := lk.Files(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, f := range files {
		rows, err := lake.ReadFile[T](context.Background(), lk, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

type readingOut struct {
	SensorID string   `parquet:"sensor_id"`
	Metric   string   `parquet:"metric"`
	TS       int64    `parquet:"ts"`
	Value    float64  `parquet:"value"`
	Unit     string   `parquet:"unit,optional"`
	IngestID int64    `parquet:"ingest_id"`
	Flags    []string `parquet:"flags,list"`
}

type quarantineOut struct {
	IngestID int64  `parquet:"ingest_id"`
	Topic    string `parquet:"topic"`
	Payload  []byte `parquet:"payload"`
	Reason   string `parquet:"reason"`
	Detail   string `parquet:"detail"`
}

type rawOut struct {
	IngestID int64  `parquet:"ingest_id"`
	Source   string `parquet:"source"`
	Topic    string `parquet:"topic"`
	QoS      int32  `parquet:"qos"`
	Payload  []byte `parquet:"payload"`
}

func ts(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestStagesWriteEveryTableExactlyOnce(t *testing.T) {
	r := newRig(t)
	r.publish("sensors", `{"sensor_id":"s1","timestamp":"2026-11-24T10:00:00","value":21.5}`)
	r.publish("sensors", `{"sensor_id":"s1","timestamp":"2026-11-24T10:00:00","value":21.5}`) // duplicate reading
	r.publish("sensors", `{"sensor_id":"s1","timestamp":"2026-11-24T10:00:01","value":99}`)   // out of range
	r.publish("sensors", `{"sensor_id":"ghost","timestamp":"2026-11-24T10:00:02","value":1}`) // unknown sensor
	r.publish("sensors", `{"sensor_id":"s1","value":`)                                        // quarantined
	r.publish("sensors", ``)                                                                  // quarantined
	r.publish("plant/a/l1/pump-1/pressure", `{"ts":1795946400000,"v":3.5}`)
	r.run()

	raw := readTable[rawOut](t, r.lk, "raw")
	if len(raw) != 7 {
		t.Fatalf("raw holds %d rows, want all 7 messages", len(raw))
	}
	slices.SortFunc(raw, func(a, b rawOut) int { return int(a.IngestID - b.IngestID) })
	if raw[4].Topic != "sensors" || string(raw[4].Payload) != `{"sensor_id":"s1","value":` || raw[4].QoS != 1 || raw[4].Source != "mqtt" || raw[5].Payload == nil && len(raw[5].Payload) != 0 {
		t.Fatalf("raw row 4 = %+v", raw[4])
	}

	got := readTable[readingOut](t, r.lk, "readings")
	slices.SortFunc(got, func(a, b readingOut) int { return int(a.IngestID - b.IngestID) })
	want := []readingOut{
		{"s1", "temperature", ts("2026-11-24T10:00:00Z"), 21.5, "C", 0, []string{}},
		{"s1", "temperature", ts("2026-11-24T10:00:01Z"), 99, "C", 2, []string{"out_of_range"}},
		{"ghost", "value", ts("2026-11-24T10:00:02Z"), 1, "", 3, []string{"unknown_sensor"}},
		{"pump-1", "pressure", 1795946400000000, 3.5, "", 6, []string{"unknown_sensor"}},
	}
	if len(got) != len(want) {
		t.Fatalf("readings = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.SensorID != w.SensorID || g.Metric != w.Metric || g.TS != w.TS || g.Value != w.Value || g.Unit != w.Unit || g.IngestID != w.IngestID || !slices.Equal(g.Flags, w.Flags) {
			t.Errorf("reading %d = %+v, want %+v", i, g, w)
		}
	}

	q := readTable[quarantineOut](t, r.lk, "quarantine")
	slices.SortFunc(q, func(a, b quarantineOut) int { return int(a.IngestID - b.IngestID) })
	if len(q) != 2 || q[0].IngestID != 4 || q[0].Reason != "invalid_json" || q[1].IngestID != 5 || q[1].Reason != "empty_payload" || q[0].Detail == "" {
		t.Fatalf("quarantine = %+v", q)
	}

	// A second process over the same log and lake adds nothing: both stages resume after their commits.
	r.run()
	if n := len(readTable[readingOut](t, r.lk, "readings")); n != 4 {
		t.Fatalf("after a restart readings holds %d rows, want 4", n)
	}
	if n := len(readTable[rawOut](t, r.lk, "raw")); n != 7 {
		t.Fatalf("after a restart raw holds %d rows, want 7", n)
	}
	if n := len(readTable[quarantineOut](t, r.lk, "quarantine")); n != 2 {
		t.Fatalf("after a restart quarantine holds %d rows, want 2", n)
	}
}

// TestArchiverSpoolsRowGroups: with lake.row_group_bytes far below a commit's rows, the archiver
// encodes them in row groups as they come, and raw/ still holds every message once, byte for byte,
// in several commits; a restart adds nothing.
func TestArchiverSpoolsRowGroups(t *testing.T) {
	r := newRig(t)
	r.spool = 1 << 20
	r.flushRows = 12_000
	const n = 30_000 // 2 full commits and the drain's; each spools ~4 row groups of 1MiB of rows
	payload := func(i int) string {
		return fmt.Sprintf(`{"sensor_id":"s%d","ts":%d,"value":%d.%d,"pad":"%0100d"}`, i%50, 1795946400000+int64(i), i%40, i%10, i)
	}
	for i := range n {
		r.publish(fmt.Sprintf("plant/s%d", i%50), payload(i))
	}
	r.run()
	raw := readTable[rawOut](t, r.lk, "raw")
	if len(raw) != n {
		t.Fatalf("raw holds %d rows, want %d", len(raw), n)
	}
	slices.SortFunc(raw, func(a, b rawOut) int { return int(a.IngestID - b.IngestID) })
	for i, row := range raw {
		if row.IngestID != int64(i) || string(row.Payload) != payload(i) || row.Topic != fmt.Sprintf("plant/s%d", i%50) {
			t.Fatalf("raw row %d = %d %q %q, want message %d as published", i, row.IngestID, row.Topic, row.Payload, i)
		}
	}
	files, _, err := r.lk.Files(context.Background(), "raw")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("raw has %d files, want 3 (two commits of flush_rows and the drain's)", len(files))
	}
	r.run()
	if got := len(readTable[rawOut](t, r.lk, "raw")); got != n {
		t.Fatalf("after a restart raw holds %d rows, want %d", got, n)
	}
}

// TestDecoderRecognisesRedeliveryAfterRestart: a message whose first copy was committed before a
// restart arrives again after it (its acknowledgement was lost): the new process must not store it
// twice, although its deduplication window starts empty.
func TestDecoderRecognisesRedeliveryAfterRestart(t *testing.T) {
	r := newRig(t)
	msg := `{"sensor_id":"s1","timestamp":"2026-11-24T10:00:00","value":21.5}`
	r.publish("sensors", msg)
	r.run()
	r.publish("sensors", msg) // the redelivery, at a new offset
	r.publish("sensors", `{"sensor_id":"s1","timestamp":"2026-11-24T10:00:05","value":22}`)
	r.run()
	got := readTable[readingOut](t, r.lk, "readings")
	if len(got) != 2 {
		t.Fatalf("readings holds %d rows, want 2 (the redelivered one once): %+v", len(got), got)
	}
	if n := len(readTable[rawOut](t, r.lk, "raw")); n != 3 {
		t.Fatalf("raw holds %d rows, want every one of the 3 messages", n)
	}
}

// recordingHot is a hot sink that records what it is told, as the query engine would hold it.
type recordingHot struct {
	mu        sync.Mutex
	added     map[int64]int // ingest id -> readings added
	committed []int64       // every CommittedReadings offset, in order
}

func (h *recordingHot) AddReadings(p int32, rows []lake.Reading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range rows {
		h.added[r.IngestID]++
	}
}

func (h *recordingHot) CommittedReadings(ctx context.Context, p int32, last int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.committed = append(h.committed, last)
}

// TestStagesCommitWhileProcessing: with commits due every 500 rows, both stages commit on their commit
// goroutines while processing on; every message lands once in raw/, every reading once in readings/,
// each commit of readings/ is reported to the hot sink in order, and a restart adds nothing.
func TestStagesCommitWhileProcessing(t *testing.T) {
	r := newRig(t)
	r.flushRows = 500
	hot := &recordingHot{added: map[int64]int{}}
	r.hot = hot
	const n = 20_000 // five fetches of at most memlog.MaxBatch records, each one due
	for i := range n {
		r.publish("sensors", fmt.Sprintf(`{"sensor_id":"s%d","timestamp":%d,"value":%d}`, i%7, 1795946400000+int64(i), i))
	}
	r.run()
	raw := readTable[rawOut](t, r.lk, "raw")
	got := readTable[readingOut](t, r.lk, "readings")
	if len(raw) != n || len(got) != n {
		t.Fatalf("raw holds %d rows, readings %d; want %d of each", len(raw), len(got), n)
	}
	seen := map[int64]bool{}
	for _, g := range got {
		if seen[g.IngestID] || g.Value != float64(g.IngestID) {
			t.Fatalf("reading %+v repeated or wrong", g)
		}
		seen[g.IngestID] = true
	}
	_, version, err := r.lk.Files(context.Background(), "readings")
	if err != nil {
		t.Fatal(err)
	}
	if version < 5 {
		t.Fatalf("readings/ is at version %d: want a commit per fetch of the %d rows", version, n)
	}
	hot.mu.Lock()
	defer hot.mu.Unlock()
	if len(hot.added) != n {
		t.Fatalf("the hot sink got %d distinct readings, want %d", len(hot.added), n)
	}
	for id, c := range hot.added {
		if c != 1 {
			t.Fatalf("the hot sink got reading %d %d times", id, c)
		}
	}
	if !slices.IsSorted(hot.committed) || len(hot.committed) < 5 || hot.committed[len(hot.committed)-1] != n-1 {
		t.Fatalf("hot sink commits %v: want at least 5, increasing, ending at %d", hot.committed, n-1)
	}
	r.run()
	if m := len(readTable[readingOut](t, r.lk, "readings")); m != n {
		t.Fatalf("after a restart readings holds %d rows, want %d", m, n)
	}
}
