package cli

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/query"
	"github.com/sluice-project/sluice/internal/query/httpsql"
	"github.com/sluice-project/sluice/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

var day0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixMicro()

func lakeWithReadings(t *testing.T) string {
	lk, u := testkit.TempLake(t)
	testkit.NewCommitter(t, lk, lake.ReadingsSpec()).Commit(t, testkit.Readings(30, 3, day0, 1_000_000, 0), "decoder-p0", 29)
	return u
}

const q = "SELECT sensor_id, count(*) AS n, max(value) AS top, bool_and(value >= 0) AS ok FROM readings GROUP BY 1 ORDER BY 1"

const wantTable = ` sensor_id  |  n |   top | ok
------------+----+-------+------
 sensor-000 | 10 | 0.009 | true
 sensor-001 | 10 | 1.009 | true
 sensor-002 | 10 | 2.009 | true
`

func TestDirectTable(t *testing.T) {
	u := lakeWithReadings(t)
	var out, errOut bytes.Buffer
	err := Run(context.Background(), Options{SQL: q, LakeURL: u, Direct: true, Config: query.DefaultConfig()}, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasPrefix(got, wantTable) || !strings.Contains(got, "(3 rows;") {
		t.Fatalf("table:\n%s\nwant:\n%s", got, wantTable)
	}
}

// TestDirectTableExactNumbers: numbers JSON carries as strings (HUGEINT, DECIMAL) are right-aligned
// like the others.
func TestDirectTableExactNumbers(t *testing.T) {
	u := lakeWithReadings(t)
	var out, errOut bytes.Buffer
	sql := "SELECT sensor_id, sum(ingest_id) AS ids, CAST(max(value) AS DECIMAL(8,3)) AS top FROM readings GROUP BY 1 ORDER BY 1"
	if err := Run(context.Background(), Options{SQL: sql, LakeURL: u, Direct: true, Config: query.DefaultConfig()}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	want := ` sensor_id  | ids |   top
------------+-----+-------
 sensor-000 | 135 | 0.009
 sensor-001 | 145 | 1.009
 sensor-002 | 155 | 2.009
`
	if got := out.String(); !strings.HasPrefix(got, want) {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatsAndErrors(t *testing.T) {
	u := lakeWithReadings(t)
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), Options{SQL: q, Format: "csv", LakeURL: u, Direct: true, Config: query.DefaultConfig()}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "sensor_id,n,top,ok\nsensor-000,10,0.009,true\nsensor-001,10,1.009,true\nsensor-002,10,2.009,true\n" {
		t.Fatalf("csv = %q", out.String())
	}
	err := Run(context.Background(), Options{SQL: "SELECT nope\nFROM readings", LakeURL: u, Direct: true, Config: query.DefaultConfig()}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "line 1, column 8") {
		t.Fatalf("error = %v", err)
	}
	err = Run(context.Background(), Options{SQL: "COPY (SELECT 1) TO '/tmp/x'", LakeURL: u, Direct: true, Config: query.DefaultConfig()}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "COPY is not allowed") {
		t.Fatalf("COPY = %v", err)
	}
}

func TestHTTPAndFallback(t *testing.T) {
	u := lakeWithReadings(t)
	e, err := query.Open(context.Background(), u, query.DefaultConfig(), query.Static(), query.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+httpsql.Path, httpsql.Handler(e, slog.New(slog.DiscardHandler)))
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), Options{SQL: q, HTTP: ln.Addr().String(), Explicit: true}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), wantTable) {
		t.Fatalf("over HTTP:\n%s", out.String())
	}
	// Nothing listens: without an explicit --http it reads the lake and says so.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	out.Reset()
	if err := Run(context.Background(), Options{SQL: q, HTTP: addr, LakeURL: u, Config: query.DefaultConfig()}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), wantTable) || !strings.Contains(errOut.String(), "reading the lake") {
		t.Fatalf("fallback: %q / %q", out.String(), errOut.String())
	}
	if err := Run(context.Background(), Options{SQL: q, HTTP: addr, Explicit: true, LakeURL: u}, &out, &errOut); err == nil {
		t.Fatal("an explicit --http that nobody answers must fail, not fall back")
	}
}
