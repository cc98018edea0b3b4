package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
)

// sumStage is a stage whose "lake" is a slice in memory: it commits the values it buffered together
// with the offset they cover, and can be told to fail its next commits.
type sumStage struct {
	mu        sync.Mutex
	buf       []int
	committed []int // every value ever committed, in order
	version   int64 // last offset committed (-1: none)
	dueRows   int
	failNext  int
	commits   int
}

func (s *sumStage) Resume(ctx context.Context, p int32) (int64, error) { return s.version + 1, nil }
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
func (s *sumStage) Commit(ctx context.Context, p int32, last int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return errors.New("disk full")
	}
	s.committed = append(s.committed, s.buf...)
	s.buf = s.buf[:0]
	s.version = last
	s.commits++
	return nil
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
