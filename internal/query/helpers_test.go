package query

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.Cleanup(func(int) {
			for _, f := range benchCleanup {
				f()
			}
		}))
}

// testConfig is the default configuration with quick polling, for tests.
func testConfig() Config {
	c := DefaultConfig()
	c.RefreshInterval = 50 * time.Millisecond
	c.HotFlushInterval = 5 * time.Millisecond
	c.MemoryLimit = 512 << 20
	c.Threads = 2
	return c
}

func openEngine(t testing.TB, lakeURL string, cfg Config, opts ...Option) *Engine {
	t.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	e, err := Open(context.Background(), lakeURL, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// rowsOf runs q and returns every row.
func rowsOf(t testing.TB, e *Engine, q string, args ...any) [][]any {
	t.Helper()
	out, err := tryRows(e, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func tryRows(e *Engine, q string, args ...any) ([][]any, error) {
	var out [][]any
	err := e.Query(context.Background(), Request{SQL: q, Args: args}, func(r *Rows) error {
		for {
			row := make([]any, len(r.Columns()))
			if err := r.Next(row); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			out = append(out, row)
		}
	})
	return out, err
}

// count runs a query returning one integer.
func count(t testing.TB, e *Engine, q string, args ...any) int64 {
	t.Helper()
	rows := rowsOf(t, e, q, args...)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: got %v, want one value", q, rows)
	}
	n, ok := rows[0][0].(int64)
	if !ok {
		t.Fatalf("%s: got %T %v, want an integer", q, rows[0][0], rows[0][0])
	}
	return n
}
