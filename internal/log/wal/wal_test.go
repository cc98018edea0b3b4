package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/config"
	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/logtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	logtest.Run(t, logtest.Engine{Durable: true, Open: func(t testing.TB, dir string) slog2.Log {
		cfg := DefaultConfig()
		cfg.Dir = dir
		cfg.SegmentSize = 256 << 10 // several segments in the larger cases
		cfg.MaxSize = 0
		l, err := Open(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}})
}

// testConfig is a small-segment configuration in dir.
func testConfig(dir string, segmentSize int) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.SegmentSize = config.Bytes(segmentSize)
	cfg.MaxSize = 0
	return cfg
}

func openT(t testing.TB, cfg Config) *WAL {
	t.Helper()
	l, err := Open(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// val is the test payload of record i: "rec-<i>" padded with '.' to size bytes.
func val(i, size int) []byte {
	b := fmt.Appendf(nil, "rec-%07d", i)
	for len(b) < size {
		b = append(b, '.')
	}
	return b
}

// appendN appends records from..to-1 (payload size bytes) one Append each.
func appendN(t testing.TB, l *WAL, from, to, size int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := l.Append(context.Background(), slog2.Entry{Value: val(i, size)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

type rec struct {
	off int64
	val string
}

// readAll reads every durable record of l with a fresh consumer group (closed again).
func readAll(t testing.TB, l *WAL) []rec {
	t.Helper()
	l.mu.Lock()
	end := int64(-1) // after the last record present (a repair may leave a gap before durableNext)
	for _, s := range l.segs {
		if s.count > 0 {
			end = s.base + s.count
		}
	}
	l.mu.Unlock()
	c, err := l.Consume("readAll", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var out []rec
	if end < 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		recs, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch after %d records (durable end %d): %v", len(out), end, err)
		}
		for _, r := range recs {
			out = append(out, rec{r.Offset, string(r.Value)})
			if r.Offset == end-1 {
				return out
			}
		}
	}
}

// segmentFiles lists the segment files of dir.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, ok := parseSegmentName(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestOffsetsContinueAfterRetentionAndReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, 4096)
	l := openT(t, cfg)
	appendN(t, l, 0, 100, 100)
	c, err := l.Consume("g", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	c.Committed(0, 99) // every record: all but the segment being written go
	if got := len(segmentFiles(t, dir)); got != 1 {
		t.Fatalf("%d segment files after committing everything, want 1", got)
	}
	c.Close(context.Background())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, cfg)
	defer l.Close()
	first, err := l.append(context.Background(), []slog2.Entry{{Value: []byte("after")}})
	if err != nil || first != 100 {
		t.Fatalf("append after reopen got offset %d, %v; want 100", first, err)
	}
	got := readAll(t, l)
	// 37 records of 108 bytes fill a 4 KiB segment: the last segment holds 74..99, then 100.
	if len(got) != 27 || got[0].off != 74 || got[26] != (rec{100, "after"}) {
		t.Fatalf("read %d records from %v to %v, want 27 from 74 to {100 after}", len(got), got[0], got[len(got)-1])
	}
}

func TestAppendErrors(t *testing.T) {
	l := openT(t, testConfig(t.TempDir(), 4096))
	big := make([]byte, 4096-segmentHeaderSize-recordHeaderSize+1)
	if err := l.Append(context.Background(), slog2.Entry{Value: big}); !errors.Is(err, slog2.ErrTooLarge) {
		t.Fatalf("Append of %d bytes = %v, want ErrTooLarge", len(big), err)
	}
	// A too-large AppendAsync fails in order with the others, the others succeed.
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for i, v := range [][]byte{[]byte("a"), big, []byte("b")} {
		wg.Add(1)
		l.AppendAsync([]slog2.Entry{{Value: v}}, func(err error) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%d:%v", i, errors.Is(err, slog2.ErrTooLarge)))
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	if want := []string{"0:false", "1:true", "2:false"}; !slices.Equal(got, want) {
		t.Fatalf("done calls %v, want %v", got, want)
	}
	if err := l.Append(context.Background(), slog2.Entry{Value: big[:len(big)-1]}); err != nil {
		t.Fatalf("Append of the largest entry: %v", err)
	}
	if recs := readAll(t, l); len(recs) != 3 || recs[0].val != "a" || recs[1].val != "b" || len(recs[2].val) != len(big)-1 {
		t.Fatalf("log holds %d records, want a, b and the large one", len(recs))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var doneErr error
	l.AppendAsync([]slog2.Entry{{Value: []byte("x")}}, func(err error) { doneErr = err })
	if !errors.Is(doneErr, slog2.ErrClosed) {
		t.Fatalf("AppendAsync after Close: done(%v), want ErrClosed", doneErr)
	}
	if _, err := l.Consume("g", &logtest.Handler{}); !errors.Is(err, slog2.ErrClosed) {
		t.Fatalf("Consume after Close = %v, want ErrClosed", err)
	}
}

func TestOpenLocksDir(t *testing.T) {
	cfg := testConfig(t.TempDir(), 4096)
	l := openT(t, cfg)
	if l2, err := Open(cfg, nil, nil); err == nil {
		l2.Close()
		t.Fatal("second Open of the same dir succeeded, want an error")
	}
	l.Close()
	openT(t, cfg).Close()
}

func TestCloseFinishesPendingAppends(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, 64<<10)
	l := openT(t, cfg)
	const n = 5000
	var wg sync.WaitGroup
	errs := make([]error, n)
	wg.Add(n)
	for i := range n {
		l.AppendAsync([]slog2.Entry{{Value: val(i, 20)}}, func(err error) { errs[i] = err; wg.Done() })
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d queued before Close: %v", i, err)
		}
	}
	l = openT(t, cfg)
	defer l.Close()
	got := readAll(t, l)
	if len(got) != n || got[n-1] != (rec{n - 1, string(val(n-1, 20))}) {
		t.Fatalf("after reopen %d records, last %v; want %d", len(got), got[len(got)-1], n)
	}
}

func TestFetchLargeRecordsAndBatchLimit(t *testing.T) {
	l := openT(t, testConfig(t.TempDir(), 8<<20))
	defer l.Close()
	ctx := context.Background()
	sizes := []int{3 << 20, 10, readChunk - recordHeaderSize, readChunk + 1, 0, 5}
	for i, size := range sizes {
		if err := l.Append(ctx, slog2.Entry{Value: val(i, size)}); err != nil {
			t.Fatal(err)
		}
	}
	small := make([]slog2.Entry, MaxBatch+10)
	for i := range small {
		small[i] = slog2.Entry{Value: val(len(sizes)+i, 12)}
	}
	if err := l.Append(ctx, small...); err != nil {
		t.Fatal(err)
	}
	c, err := l.Consume("g", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var batches []int
	next := int64(0)
	for next < int64(len(sizes)+len(small)) {
		recs, err := c.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, len(recs))
		for _, r := range recs {
			want := 12
			if r.Offset < int64(len(sizes)) {
				want = sizes[r.Offset]
			}
			if r.Offset != next || !bytes.Equal(r.Value, val(int(next), want)) {
				t.Fatalf("record %d: offset %d, %d bytes", next, r.Offset, len(r.Value))
			}
			next++
		}
	}
	for _, n := range batches {
		if n > MaxBatch {
			t.Fatalf("a Fetch returned %d records, more than MaxBatch %d", n, MaxBatch)
		}
	}
}

func TestReadAcrossRotationWhileAppending(t *testing.T) {
	l := openT(t, testConfig(t.TempDir(), 4096))
	defer l.Close()
	c, err := l.Consume("g", &logtest.Handler{Next: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	const n = 3000
	appended := make(chan error, 1)
	go func() {
		for i := range n {
			if err := l.Append(context.Background(), slog2.Entry{Value: val(i, 50)}); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	got := logtest.ReadN(t, c, n, 20*time.Second)
	for i, r := range got {
		if r.Offset != int64(i) || !bytes.Equal(r.Value, val(i, 50)) {
			t.Fatalf("record %d = @%d %q", i, r.Offset, r.Value)
		}
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	cfg := testConfig(dir, 4096)
	l, err := Open(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testConfig(t.TempDir(), 4096), nil, reg); err == nil {
		t.Fatal("a second log on the same registry opened, want an error")
	}
	batch := make([]slog2.Entry, 74)
	for i := range batch {
		batch[i] = slog2.Entry{Value: val(i, 100)}
	}
	if err := l.Append(context.Background(), batch...); err != nil {
		t.Fatal(err)
	}
	// 74 records of 108 bytes: two full segments (37 records each), each flushed by one write + fsync.
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"appended records", testutil.ToFloat64(l.m.appendedRecords), 74},
		{"appended bytes", testutil.ToFloat64(l.m.appendedBytes), 74 * 108},
		{"retained segments", testutil.ToFloat64(l.m.retainedSegs), 2},
		{"retained bytes", testutil.ToFloat64(l.m.retainedBytes), 74*108 + 2*segmentHeaderSize},
		{"next offset", testutil.ToFloat64(l.m.nextOffset), 74},
		{"write errors", testutil.ToFloat64(l.m.writeErrors), 0},
		{"backpressure", testutil.ToFloat64(l.m.backpressure), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "sluice_wal_records_per_fsync", "sluice_wal_fsync_duration_seconds"); n != 2 {
		t.Errorf("histograms collected: %d, want 2", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg); n != 0 {
		t.Errorf("%d metrics left registered after Close, want 0", n)
	}
}
