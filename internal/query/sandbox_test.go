package query

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/testkit"
)

func TestSandboxRefusesEscapes(t *testing.T) {
	_, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), Static())
	dir, _ := LocalLakeDir(u)
	for _, c := range testkit.SQLEscapes {
		t.Run(c.Name, func(t *testing.T) {
			q := c.Query(dir)
			_, err := tryRows(e, q)
			if !errors.Is(err, ErrRefused) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: err = %v, want a refusal", q, err)
			}
			if !strings.Contains(err.Error(), c.Want) {
				t.Fatalf("%s: err = %q, want it to say %q", q, err, c.Want)
			}
		})
	}
	// The settings are unchanged and still locked.
	rows := rowsOf(t, e, "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')")
	if rows[0][0] != false || rows[0][1] != true {
		t.Fatalf("enable_external_access, lock_configuration = %v", rows[0])
	}
}

func TestSandboxAllowsQueries(t *testing.T) {
	lk, u := testkit.TempLake(t)
	testkit.NewCommitter(t, lk, lake.ReadingsSpec()).Commit(t, testkit.Readings(20, 2, day0, 1_000_000, 0), "decoder-p0", 19)
	e := openEngine(t, u, testConfig(), Static())
	dir, _ := LocalLakeDir(u)
	for _, q := range []string{
		"SELECT 1",
		"  -- a comment first\n/* and a block */ SELECT count(*) FROM readings",
		"WITH x AS (SELECT * FROM readings) SELECT count(*) FROM x",
		"FROM readings SELECT count(*)",
		"VALUES (1), (2)",
		"(SELECT 1)",
		"DESCRIBE readings",
		"SHOW TABLES",
		"SUMMARIZE readings",
		"EXPLAIN SELECT * FROM readings",
		"EXPLAIN ANALYZE SELECT count(*) FROM readings",
		"SELECT * FROM pragma_table_info('readings')",
		"SELECT count(*) FROM read_parquet('" + dir + "/readings/*/*.parquet')",
		"SELECT 1;",
	} {
		if _, err := tryRows(e, q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
}

func TestErrorsSayWhere(t *testing.T) {
	_, u := testkit.TempLake(t)
	e := openEngine(t, u, testConfig(), Static())
	cases := []struct {
		name, q    string
		kind       error
		line, col  int
		msgContain string
	}{
		{"syntax", "SELECT count(*)\nFROM readings\nWHERE sensor_id = = 'x'", ErrInvalid, 3, 19, "syntax error"},
		{"unknown column", "SELECT nope FROM readings", ErrInvalid, 1, 8, "nope"},
		{"unknown table", "SELECT 1 FROM nowhere", ErrInvalid, 1, 15, "nowhere"},
		{"runtime cast", "SELECT 'abc'::INTEGER", ErrExecution, 1, 13, "Conversion"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tryRows(e, c.q)
			var qe *Error
			if !errors.As(err, &qe) || !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
			if qe.Line != c.line || qe.Column != c.col {
				t.Fatalf("position = %d:%d, want %d:%d (%s)", qe.Line, qe.Column, c.line, c.col, qe)
			}
			if !strings.Contains(qe.Message, c.msgContain) {
				t.Fatalf("message %q lacks %q", qe.Message, c.msgContain)
			}
		})
	}
}

func TestTimeoutAndRowLimit(t *testing.T) {
	_, u := testkit.TempLake(t)
	cfg := testConfig()
	cfg.Timeout = 300 * time.Millisecond
	cfg.MaxRows = 1000
	e := openEngine(t, u, cfg, Static())
	start := time.Now()
	_, err := tryRows(e, "SELECT count(*) FROM range(100000000000) a")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("long query: err = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("the timed-out query took %s to return", el)
	}
	var n int
	var truncated bool
	err = e.Query(context.Background(), Request{SQL: "SELECT * FROM range(5000)"}, func(r *Rows) error {
		row := make([]any, 1)
		for r.Next(row) == nil {
			n++
		}
		truncated = r.Truncated()
		return nil
	})
	if err != nil || n != 1000 || !truncated {
		t.Fatalf("5000 rows with max_rows 1000: got %d rows, truncated %v, err %v", n, truncated, err)
	}
	err = e.Query(context.Background(), Request{SQL: "SELECT * FROM range(1000)"}, func(r *Rows) error {
		row := make([]any, 1)
		n = 0
		for r.Next(row) == nil {
			n++
		}
		truncated = r.Truncated()
		return nil
	})
	if err != nil || n != 1000 || truncated {
		t.Fatalf("exactly 1000 rows: got %d, truncated %v, err %v", n, truncated, err)
	}
}
