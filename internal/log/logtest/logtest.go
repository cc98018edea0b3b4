// Package logtest is the conformance suite every log engine passes (wal, memlog, kafka): one set of
// tests over the contract in package log, run by each engine's own test with its Open function.
package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	slog "github.com/sluice-project/sluice/internal/log"
)

// Engine describes the engine under test.
type Engine struct {
	// Open opens (or reopens) the log stored in dir. The test closes it.
	Open func(t testing.TB, dir string) slog.Log
	// Durable engines keep appended entries across Close and Open on the same dir.
	Durable bool
}

// Handler is a log.Handler that resumes at Next and records its calls.
type Handler struct {
	mu      sync.Mutex
	Next    int64
	Assigns int
	Revokes int
}

// Assigned implements log.Handler.
func (h *Handler) Assigned(ctx context.Context, p int32) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Assigns++
	return h.Next, nil
}

// Revoked implements log.Handler.
func (h *Handler) Revoked(ctx context.Context, p int32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Revokes++
	return nil
}

// Value returns the test value for entry i of writer w.
func Value(w, i int) []byte { return fmt.Appendf(nil, "w%03d-i%07d", w, i) }

// ReadN fetches from c until n records arrived or the deadline passes, copying values.
func ReadN(t testing.TB, c slog.Consumer, n int, deadline time.Duration) []slog.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var out []slog.Record
	for len(out) < n {
		recs, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d records: %v", len(out), n, err)
		}
		for _, r := range recs {
			r.Value = bytes.Clone(r.Value)
			out = append(out, r)
		}
	}
	return out
}

// Run runs the suite.
func Run(t *testing.T, e Engine) {
	ctx := context.Background()

	t.Run("AppendThenRead", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		defer l.Close()
		const n = 1000
		for i := 0; i < n; i++ {
			if err := l.Append(ctx, slog.Entry{Value: Value(0, i)}); err != nil {
				t.Fatal(err)
			}
		}
		c, err := l.Consume("g", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		recs := ReadN(t, c, n, 10*time.Second)
		if len(recs) != n {
			t.Fatalf("read %d records, want %d", len(recs), n)
		}
		for i, r := range recs {
			if r.Offset != int64(i) || !bytes.Equal(r.Value, Value(0, i)) || r.Partition != 0 {
				t.Fatalf("record %d = {p%d @%d %q}, want {p0 @%d %q}", i, r.Partition, r.Offset, r.Value, i, Value(0, i))
			}
		}
	})

	t.Run("ResumeAtAssignedOffset", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		defer l.Close()
		batch := make([]slog.Entry, 50)
		for i := range batch {
			batch[i] = slog.Entry{Value: Value(0, i)}
		}
		if err := l.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		h := &Handler{Next: 37}
		c, err := l.Consume("g", h)
		if err != nil {
			t.Fatal(err)
		}
		recs := ReadN(t, c, 13, 10*time.Second)
		if recs[0].Offset != 37 || recs[12].Offset != 49 || !bytes.Equal(recs[0].Value, Value(0, 37)) {
			t.Fatalf("resumed at %d (%q), last %d; want 37..49", recs[0].Offset, recs[0].Value, recs[12].Offset)
		}
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if h.Assigns != 1 || h.Revokes != 1 {
			t.Fatalf("handler saw %d assigns and %d revokes, want 1 and 1", h.Assigns, h.Revokes)
		}
	})

	t.Run("FetchWaitsForAppend", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		defer l.Close()
		c, err := l.Consume("g", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		got := make(chan []slog.Record, 1)
		go func() { got <- ReadN(t, c, 1, 10*time.Second) }()
		time.Sleep(50 * time.Millisecond)
		if err := l.Append(ctx, slog.Entry{Value: []byte("late")}); err != nil {
			t.Fatal(err)
		}
		recs := <-got
		if string(recs[0].Value) != "late" || recs[0].Offset != 0 {
			t.Fatalf("got %+v, want offset 0 %q", recs[0], "late")
		}
	})

	t.Run("FetchHonoursContext", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		defer l.Close()
		c, err := l.Consume("g", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := c.Fetch(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Fetch on an empty log = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("ConcurrentAppendersKeepOrderAndCount", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		defer l.Close()
		const writers, per = 8, 500
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if err := l.Append(ctx, slog.Entry{Value: Value(w, i)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		c, err := l.Consume("g", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		recs := ReadN(t, c, writers*per, 10*time.Second)
		next := make([]int, writers)
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Fatalf("record %d has offset %d", i, r.Offset)
			}
			var w, n int
			if _, err := fmt.Sscanf(string(r.Value), "w%03d-i%07d", &w, &n); err != nil {
				t.Fatalf("record %d: %q: %v", i, r.Value, err)
			}
			if n != next[w] {
				t.Fatalf("writer %d: got entry %d, want %d (order lost)", w, n, next[w])
			}
			next[w]++
		}
	})

	// With AppendLazy too, when the engine has it: every third append is lazy.
	t.Run("AppendAsyncCallsDoneInOrder", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		defer l.Close()
		lazy, _ := l.(slog.LazyAppender)
		const n = 2000
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			done := func(err error) {
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				wg.Done()
			}
			if lazy != nil && i%3 == 0 {
				lazy.AppendLazy([]slog.Entry{{Value: Value(0, i)}}, done)
			} else {
				l.AppendAsync([]slog.Entry{{Value: Value(0, i)}}, done)
			}
		}
		wg.Wait()
		for i, got := range order {
			if got != i {
				t.Fatalf("done #%d was for append %d, want %d", i, got, i)
			}
		}
		c, err := l.Consume("g", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		recs := ReadN(t, c, n, 10*time.Second)
		if !bytes.Equal(recs[n-1].Value, Value(0, n-1)) {
			t.Fatalf("last record %q, want %q", recs[n-1].Value, Value(0, n-1))
		}
	})

	t.Run("UncommittedGroupKeepsRecords", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		defer l.Close()
		fast, err := l.Consume("fast", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		slow, err := l.Consume("slow", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		const n = 3000
		big := bytes.Repeat([]byte("x"), 1000)
		for i := 0; i < n; i += 100 {
			batch := make([]slog.Entry, 100)
			for j := range batch {
				batch[j] = slog.Entry{Value: append(Value(0, i+j), big...)}
			}
			if err := l.Append(ctx, batch...); err != nil {
				t.Fatal(err)
			}
		}
		ReadN(t, fast, n, 10*time.Second)
		fast.Committed(0, n-1)
		if err := fast.Close(ctx); err != nil {
			t.Fatal(err)
		}
		recs := ReadN(t, slow, n, 10*time.Second)
		if recs[0].Offset != 0 || !bytes.HasPrefix(recs[0].Value, Value(0, 0)) {
			t.Fatalf("slow group starts at %d, want 0: the log freed what it still needed", recs[0].Offset)
		}
		slow.Close(ctx)
	})

	t.Run("AppendAfterCloseFails", func(t *testing.T) {
		l := e.Open(t, t.TempDir())
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, slog.Entry{Value: []byte("x")}); !errors.Is(err, slog.ErrClosed) {
			t.Fatalf("Append after Close = %v, want ErrClosed", err)
		}
	})

	if !e.Durable {
		return
	}

	t.Run("ReopenKeepsEverything", func(t *testing.T) {
		dir := t.TempDir()
		l := e.Open(t, dir)
		const n = 777
		for i := 0; i < n; i++ {
			if err := l.Append(ctx, slog.Entry{Value: Value(0, i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = e.Open(t, dir)
		defer l.Close()
		if err := l.Append(ctx, slog.Entry{Value: Value(0, n)}); err != nil {
			t.Fatal(err)
		}
		c, err := l.Consume("g", &Handler{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		recs := ReadN(t, c, n+1, 10*time.Second)
		for i, r := range recs {
			if r.Offset != int64(i) || !bytes.Equal(r.Value, Value(0, i)) {
				t.Fatalf("after reopen record %d = @%d %q, want @%d %q", i, r.Offset, r.Value, i, Value(0, i))
			}
		}
	})
}

// LazyCounter is an Appender with AppendLazy (forwarded to AppendAsync) that counts the asynchronous
// appends made each way, for tests of appenders that choose between them (log.LazyAppender).
type LazyCounter struct {
	slog.Appender
	Lazy, Async atomic.Int64
}

func (l *LazyCounter) AppendAsync(entries []slog.Entry, done func(error)) {
	l.Async.Add(1)
	l.Appender.AppendAsync(entries, done)
}

func (l *LazyCounter) AppendLazy(entries []slog.Entry, done func(error)) {
	l.Lazy.Add(1)
	l.Appender.AppendAsync(entries, done)
}
