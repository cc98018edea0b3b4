package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// sumStage is a stage whose "lake" is a slice in memory: it commits the values it buffered together
// with the offset they cover, and can be told to fail its next commits or to hold them at a gate.
type sumStage struct {
	buf     []int // the runner's goroutine only
	dueRows int

	mu          sync.Mutex
	committed   []int   // every value ever committed, in order
	versions    []int64 // the offset of every successful commit, in order
	version     int64   // last offset committed (-1: none)
	failNext    int
	commits     int
	attempts    []int // values in each commit attempt
	gate        chan struct{}
	inCommit    int // commits running now
	maxInCommit int
}

func (s *sumStage) Resume(ctx context.Context, p int32) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version + 1, nil
}
func (s *sumStage) Process(ctx context.Context, recs []slog2.Record) error {
	for _, r := range recs {
		n, err := strconv.Atoi(string(r.Value))
		if err != nil {
			return err
		}
		s.buf = append(s.buf, n)
	}
	return nil
}
func (s *sumStage) Due(time.Time) bool { return len(s.buf) >= s.dueRows }
func (s *sumStage) Seal(p int32, last int64) CommitFunc {
	vals := s.buf
	s.buf = nil
	return func(ctx context.Context) error {
		s.mu.Lock()
		s.inCommit++
		s.maxInCommit = max(s.maxInCommit, s.inCommit)
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.inCommit--
		s.attempts = append(s.attempts, len(vals))
		if s.failNext > 0 {
			s.failNext--
			return errors.New("disk full")
		}
		s.committed = append(s.committed, vals...)
		s.versions = append(s.versions, last)
		s.version = last
		s.commits++
		return nil
	}
}

func (s *sumStage) snapshot() (committed []int, commits int, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.committed), s.commits, s.version
}

func appendN(t *testing.T, l slog2.Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), slog2.Entry{Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunnerDrainCommitsEverythingOnce(t *testing.T) {
	l := memlog.New()
	defer l.Close()
	st := &sumStage{version: -1, dueRows: 100}
	reg := prometheus.NewRegistry()
	r, err := NewRunner("sum", l, st, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 1050)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	r.Drain()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(st.committed) != 1050 || st.version != 1049 {
		t.Fatalf("committed %d values up to offset %d, want 1050 up to 1049", len(st.committed), st.version)
	}
	for i, v := range st.committed {
		if v != i {
			t.Fatalf("value %d is %d", i, v)
		}
	}
	if got := testutil.ToFloat64(r.m.records); got != 1050 {
		t.Fatalf("records metric = %v", got)
	}
	if l.First() != 1050 {
		t.Fatalf("log still holds from %d: Committed was not passed on", l.First())
	}
}

func TestRunnerResumesAfterCommittedOffset(t *testing.T) {
	l := memlog.New()
	defer l.Close()
	st := &sumStage{version: -1, dueRows: 10}
	appendN(t, l, 0, 30)
	for round := 0; round < 3; round++ {
		if round > 0 {
			appendN(t, l, 25+round*5, 5)
		}
		r, err := NewRunner("sum", l, st, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		go r.Drain()
		if err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(st.committed) != 40 {
		t.Fatalf("committed %d values over three runs, want 40 (each once)", len(st.committed))
	}
	for i, v := range st.committed {
		if v != i {
			t.Fatalf("value %d is %d: a record was committed twice or skipped", i, v)
		}
	}
}

func TestRunnerRetriesFailedCommits(t *testing.T) {
	l := memlog.New()
	defer l.Close()
	st := &sumStage{version: -1, dueRows: 5, failNext: 3}
	reg := prometheus.NewRegistry()
	r, err := NewRunner("sum", l, st, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 5)
	go r.Drain()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.commits != 1 || len(st.committed) != 5 || st.version != 4 {
		t.Fatalf("after 3 failures: %d commits of %v up to %d", st.commits, st.committed, st.version)
	}
	if got := testutil.ToFloat64(r.m.commitErrors); got != 3 {
		t.Fatalf("commit errors metric = %v, want 3", got)
	}
}

func TestRunnerCancelCommitsProcessed(t *testing.T) {
	l := memlog.New()
	defer l.Close()
	st := &sumStage{version: -1, dueRows: 1 << 30} // never due by size
	r, err := NewRunner("sum", l, st, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if testutil.ToFloat64(r.m.records) == 20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if len(st.committed) != 20 || st.version != 19 {
		t.Fatalf("on cancel committed %d up to %d, want 20 up to 19", len(st.committed), st.version)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunnerCommitsOffTheStageGoroutine: while a commit is held, the stage goes on processing into a
// fresh buffer; a second commit waits for the first (one in flight); the log hears of a commit only
// once it is durable; commits land in order with increasing versions, every value once.
func TestRunnerCommitsOffTheStageGoroutine(t *testing.T) {
	l := memlog.New()
	defer l.Close()
	gate := make(chan struct{})
	st := &sumStage{version: -1, dueRows: 100, gate: gate}
	reg := prometheus.NewRegistry()
	r, err := NewRunner("sum", l, st, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 100)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	testkit.Eventually(t, 5*time.Second, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.inCommit == 1
	}, "the first commit did not start")
	// The first commit (offsets 0-99) is held: records keep being processed meanwhile (fewer than
	// dueRows, so no second commit falls due however the log splits them into fetches).
	appendN(t, l, 100, 90)
	testkit.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(r.m.records) == 190 },
		"records were not processed while a commit was in flight")
	// Now a second commit falls due: it waits for the first, and the stage with it.
	appendN(t, l, 190, 160)
	testkit.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(r.m.records) >= 200 },
		"the records making the second commit due were not processed")
	if _, commits, _ := st.snapshot(); commits != 0 {
		t.Fatalf("%d commits made while the gate was shut", commits)
	}
	if l.First() != 0 {
		t.Fatalf("the log released up to %d before the commit was durable", l.First())
	}
	close(gate)
	r.Drain()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	committed, _, version := st.snapshot()
	if len(committed) != 350 || version != 349 {
		t.Fatalf("committed %d values up to %d, want 350 up to 349", len(committed), version)
	}
	for i, v := range committed {
		if v != i {
			t.Fatalf("value %d is %d: out of order, repeated or skipped", i, v)
		}
	}
	if st.versions[0] != 99 || !slices.IsSorted(st.versions) || slices.Compact(slices.Clone(st.versions))[len(st.versions)-1] != 349 {
		t.Fatalf("commit versions %v: want 99 first, increasing, 349 last", st.versions)
	}
	if st.maxInCommit != 1 {
		t.Fatalf("%d commits ran at once, want at most 1", st.maxInCommit)
	}
	if l.First() != 350 {
		t.Fatalf("log holds from %d, want 350: Committed was not passed on", l.First())
	}
}

// TestRunnerRetriesFailedCommitBeforeLater: the first commit fails several times while more records
// arrive; it is retried with the same values, and what was processed later is committed after it.
func TestRunnerRetriesFailedCommitBeforeLater(t *testing.T) {
	l := memlog.New()
	defer l.Close()
	st := &sumStage{version: -1, dueRows: 10, failNext: 3}
	reg := prometheus.NewRegistry()
	r, err := NewRunner("sum", l, st, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 10)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	testkit.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(r.m.commitErrors) >= 1 }, "no commit failed")
	appendN(t, l, 10, 40)
	r.Drain()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	committed, commits, version := st.snapshot()
	if len(committed) != 50 || version != 49 {
		t.Fatalf("committed %d values up to %d, want 50 up to 49", len(committed), version)
	}
	for i, v := range committed {
		if v != i {
			t.Fatalf("value %d is %d", i, v)
		}
	}
	if st.attempts[0] != 10 || st.attempts[1] != 10 || st.attempts[2] != 10 || st.attempts[3] != 10 {
		t.Fatalf("attempts %v: the failed commit of 10 values was not retried as is 3 times, then succeeded", st.attempts)
	}
	if st.versions[0] != 9 {
		t.Fatalf("versions %v: the first commit must cover offset 9", st.versions)
	}
	if got := testutil.ToFloat64(r.m.commitErrors); got != 3 {
		t.Fatalf("commit errors metric = %v, want 3", got)
	}
	if got := testutil.ToFloat64(r.m.commits); got != float64(commits) {
		t.Fatalf("commits metric = %v, stage made %d", got, commits)
	}
}

// TestRunnerCancelWaitsForCommitInFlight: Run, cancelled while a commit is held, returns only after
// that commit and the tail are committed.
func TestRunnerCancelWaitsForCommitInFlight(t *testing.T) {
	l := memlog.New()
	defer l.Close()
	gate := make(chan struct{})
	st := &sumStage{version: -1, dueRows: 10, gate: gate}
	r, err := NewRunner("sum", l, st, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 15)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testkit.Eventually(t, 5*time.Second, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.inCommit == 1
	}, "the first commit did not start")
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while its commit was held", err)
	case <-time.After(100 * time.Millisecond): // Run must still be waiting; not a correctness sleep
	}
	close(gate)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	committed, _, version := st.snapshot()
	if len(committed) != 15 || version != 14 {
		t.Fatalf("committed %d values up to %d, want 15 up to 14", len(committed), version)
	}
}
