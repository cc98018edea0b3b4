package wal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-project/sluice/internal/config"
	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/logtest"
	"github.com/sluice-project/sluice/internal/testkit"
)

// firstOffset is the first offset a new group reads.
func firstOffset(t *testing.T, l *WAL) int64 {
	t.Helper()
	c, err := l.Consume("probe", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	recs := logtest.ReadN(t, c, 1, 5*time.Second)
	return recs[0].Offset
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, testConfig(dir, 4096))
	defer l.Close()
	ctx := context.Background()
	files := func() int { return len(segmentFiles(t, dir)) }

	// 370 records of 108 bytes: 10 segments of 37 (offsets 37k..37k+36).
	appendN(t, l, 0, 370, recSize)
	if files() != 10 {
		t.Fatalf("%d segment files, want 10", files())
	}
	a, err := l.Consume("a", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Consume("b", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name      string
		do        func()
		files     int
		first     int64 // first offset still held
		retainedB float64
	}{
		{"a commits everything, b has not committed: b holds all", func() { a.Committed(0, 369) }, 10, 0, 370*108 + 10*16},
		{"b commits 100: segments ending at 36 and 73 go", func() { b.Committed(0, 100) }, 8, 74, 296*108 + 8*16},
		{"b commits an older offset: nothing changes", func() { b.Committed(0, 50) }, 8, 74, 296*108 + 8*16},
		{"b commits 110, the last of segment 74: it goes", func() { b.Committed(0, 110) }, 7, 111, 259*108 + 7*16},
		{"b closes: a's commit frees all but the segment being written", func() { b.Close(ctx) }, 1, 333, 37*108 + 16},
		{"a closes, no group left: appends keep everything", func() { a.Close(ctx); appendN(t, l, 370, 450, recSize) }, 4, 333, 117*108 + 4*16},
	}
	for _, st := range steps {
		st.do()
		if got := files(); got != st.files {
			t.Fatalf("%s: %d segment files, want %d", st.name, got, st.files)
		}
		if got := testutil.ToFloat64(l.m.retainedSegs); got != float64(st.files) {
			t.Fatalf("%s: retained segments gauge %v, want %d", st.name, got, st.files)
		}
		if got := testutil.ToFloat64(l.m.retainedBytes); got != st.retainedB {
			t.Fatalf("%s: retained bytes gauge %v, want %v", st.name, got, st.retainedB)
		}
		if got := firstOffset(t, l); got != st.first {
			t.Fatalf("%s: first offset %d, want %d", st.name, got, st.first)
		}
	}
}

func TestBackpressure(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, 4096)
	cfg.MaxSize = 8192
	l := openT(t, cfg)
	defer l.Close()
	ctx := context.Background()
	g, err := l.Consume("g", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(ctx)

	// 76 records: 4012 + 4012 + 16 + 2*108 = 8256 bytes retained, past max_size.
	appendN(t, l, 0, 76, recSize)
	testkit.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(l.m.backpressure) == 1 },
		"the backpressure gauge never went to 1 at %d retained bytes", 8256)
	queued := func() int { l.qmu.Lock(); defer l.qmu.Unlock(); return len(l.queue) }

	blocked := make(chan error, 1)
	go func() { blocked <- l.Append(ctx, slog2.Entry{Value: val(76, recSize)}) }()
	testkit.Eventually(t, 5*time.Second, func() bool { return queued() == 1 }, "the append was not queued")

	// An append whose context ends while it waits is withdrawn: it never takes an offset.
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := l.Append(tctx, slog2.Entry{Value: []byte("withdrawn")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append with a deadline while the log is full = %v, want DeadlineExceeded", err)
	}
	asyncDone := make(chan error, 1)
	l.AppendAsync([]slog2.Entry{{Value: val(77, recSize)}}, func(err error) { asyncDone <- err })
	testkit.Eventually(t, 5*time.Second, func() bool { return queued() == 3 }, "the async append was not queued")
	select {
	case err := <-blocked:
		t.Fatalf("Append returned (%v) while the log was full", err)
	case err := <-asyncDone:
		t.Fatalf("AppendAsync's done ran (%v) while the log was full", err)
	default:
	}

	g.Committed(0, 36) // frees segment 0: 4244 bytes retained
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatalf("blocked Append: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append still blocked after a commit freed a segment")
	}
	if err := <-asyncDone; err != nil {
		t.Fatalf("AppendAsync: %v", err)
	}
	// Nothing is counted as queued once the queue is empty, the withdrawn append included.
	testkit.Eventually(t, 5*time.Second, func() bool { return queued() == 0 }, "the queue never emptied")
	l.qmu.Lock()
	pend := l.pend
	l.qmu.Unlock()
	if pend != (pending{}) {
		t.Fatalf("queue empty but %+v counted as pending", pend)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(l.m.backpressure) == 0 },
		"the backpressure gauge stayed at 1")
	got := readAll(t, l)
	if len(got) != 78-37 || got[len(got)-2] != (rec{76, string(val(76, recSize))}) || got[len(got)-1] != (rec{77, string(val(77, recSize))}) {
		t.Fatalf("log holds %d records ending %v, want 41 ending with 76 and 77", len(got), got[len(got)-2:])
	}
}

func TestCloseWritesPastMaxSize(t *testing.T) {
	cfg := testConfig(t.TempDir(), 4096)
	cfg.MaxSize = config.Bytes(8192)
	l := openT(t, cfg)
	g, err := l.Consume("g", &logtest.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 76, recSize)
	done := make(chan error, 1)
	l.AppendAsync([]slog2.Entry{{Value: val(76, recSize)}}, func(err error) { done <- err })
	g.Close(context.Background())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("append queued before Close: %v", err)
	}
	l = openT(t, cfg)
	defer l.Close()
	if got := readAll(t, l); len(got) != 77 {
		t.Fatalf("%d records after reopen, want 77", len(got))
	}
}
