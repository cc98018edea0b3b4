package httpsql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/httpapi"
	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/query"
	"github.com/sluice-project/sluice/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

var day0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixMicro()

// serve starts the HTTP listener on 127.0.0.1:0 with the SQL handler over a lake of 100 readings
// (10 sensors, one a second) and returns its base URL and the lake's directory.
func serve(t *testing.T, cfg query.Config, hcfg httpapi.Config) (string, string) {
	t.Helper()
	lk, u := testkit.TempLake(t)
	testkit.NewCommitter(t, lk, lake.ReadingsSpec()).Commit(t, testkit.Readings(100, 10, day0, 1_000_000, 0), "decoder-p0", 99)
	logger := slog.New(slog.DiscardHandler)
	e, err := query.Open(context.Background(), u, cfg, query.WithLogger(logger), query.Static())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	hcfg.Listen = "127.0.0.1:0"
	s := httpapi.New(hcfg, prometheus.NewRegistry(), logger)
	s.Handle("POST "+Path, Handler(e, logger))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	dir, _ := query.LocalLakeDir(u)
	return "http://" + s.Addr().String(), dir
}

type response struct {
	status  int
	header  http.Header
	body    []byte
	trailer http.Header
}

func post(t *testing.T, url, contentType, body string, hdr map[string]string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b, resp.Trailer}
}

const q3 = "SELECT sensor_id, ts, value, flags, NULL::VARCHAR AS nothing FROM readings WHERE ingest_id < 3 ORDER BY ingest_id"

func TestFormats(t *testing.T) {
	base, _ := serve(t, query.DefaultConfig(), httpapi.Config{})
	url := base + Path
	t.Run("json by default", func(t *testing.T) {
		r := post(t, url, "text/plain", q3, nil)
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		var got struct {
			Columns   []struct{ Name, Type string }
			Rows      [][]any
			RowCount  int `json:"row_count"`
			Truncated bool
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		if len(got.Columns) != 5 || got.Columns[1].Name != "ts" || got.Columns[1].Type != "TIMESTAMP WITH TIME ZONE" || got.Columns[3].Type != "VARCHAR[]" {
			t.Fatalf("columns = %+v", got.Columns)
		}
		if got.RowCount != 3 || len(got.Rows) != 3 || got.Truncated {
			t.Fatalf("row_count %d, rows %d, truncated %v", got.RowCount, len(got.Rows), got.Truncated)
		}
		if r0 := got.Rows[0]; r0[0] != "sensor-000" || r0[1] != "2026-11-24T10:00:00Z" || r0[2] != 0.0 || len(r0[3].([]any)) != 0 || r0[4] != nil {
			t.Fatalf("row 0 = %v", r0)
		}
		if r.trailer.Get(TrailerRows) != "3" || r.trailer.Get(TrailerTruncated) != "false" {
			t.Fatalf("trailers = %v", r.trailer)
		}
	})
	t.Run("csv by Accept", func(t *testing.T) {
		r := post(t, url, "", q3, map[string]string{"Accept": "text/csv"})
		recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil || r.status != 200 {
			t.Fatalf("%d %v: %s", r.status, err, r.body)
		}
		want := [][]string{{"sensor_id", "ts", "value", "flags", "nothing"}, {"sensor-000", "2026-11-24T10:00:00Z", "0", "[]", ""}}
		if len(recs) != 4 || strings.Join(recs[0], "|") != strings.Join(want[0], "|") || strings.Join(recs[1], "|") != strings.Join(want[1], "|") {
			t.Fatalf("csv = %q", recs)
		}
	})
	t.Run("ndjson by parameter", func(t *testing.T) {
		r := post(t, url+"?format=ndjson", "", q3, nil)
		lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
		if len(lines) != 3 || lines[1] != `{"sensor_id":"sensor-001","ts":"2026-11-24T10:00:00Z","value":1,"flags":[],"nothing":null}` {
			t.Fatalf("ndjson = %q", lines)
		}
	})
	t.Run("parquet", func(t *testing.T) {
		r := post(t, url, "application/json", `{"sql": "SELECT sensor_id, ts, value, flags, date, ingest_id::INTEGER AS small FROM readings ORDER BY ingest_id", "format": "parquet"}`, nil)
		if r.status != 200 {
			t.Fatalf("%d: %s", r.status, r.body)
		}
		path := filepath.Join(t.TempDir(), "r.parquet")
		if err := os.WriteFile(path, r.body, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n, small int64
		var sum float64
		var first, cols string
		err = db.QueryRow(`SELECT count(*), sum(value), min(sensor_id), sum(small),
			(SELECT string_agg(column_name || ' ' || column_type, ', ') FROM (DESCRIBE SELECT * FROM read_parquet('`+path+`')))
			FROM read_parquet('`+path+`')`).Scan(&n, &sum, &first, &small, &cols)
		if err != nil {
			t.Fatal(err)
		}
		if n != 100 || first != "sensor-000" || small != 4950 {
			t.Fatalf("parquet read back: %d rows, first %s, sum(small) %d", n, first, small)
		}
		if cols != "sensor_id VARCHAR, ts TIMESTAMP WITH TIME ZONE, value DOUBLE, flags VARCHAR[], date DATE, small INTEGER" {
			t.Fatalf("parquet columns = %s", cols)
		}
	})
	t.Run("arrow", func(t *testing.T) {
		r := post(t, url+"?format=arrow", "", "SELECT sensor_id, ts, value, flags FROM readings ORDER BY ingest_id", nil)
		rd, err := ipc.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("%v: %d %q", err, r.status, r.body)
		}
		defer rd.Release()
		if f := rd.Schema().Field(1); f.Type.ID() != arrow.TIMESTAMP || f.Type.(*arrow.TimestampType).TimeZone != "UTC" {
			t.Fatalf("ts field = %v", f)
		}
		rows := 0
		var last string
		for rd.Next() {
			rec := rd.RecordBatch()
			rows += int(rec.NumRows())
			col := rec.Column(0).(*array.String)
			last = col.Value(col.Len() - 1)
		}
		if rows != 100 || last != "sensor-009" {
			t.Fatalf("arrow: %d rows, last sensor %s", rows, last)
		}
	})
	t.Run("json with params", func(t *testing.T) {
		r := post(t, url, "application/json", `{"sql": "SELECT count(*) AS n FROM readings WHERE sensor_id = $1 AND value > $2", "params": ["sensor-003", 3.005]}`, nil)
		if r.status != 200 || !strings.Contains(string(r.body), "[\n[4]\n]") {
			t.Fatalf("%d: %s", r.status, r.body)
		}
	})
	t.Run("row limit", func(t *testing.T) {
		r := post(t, url+"?max_rows=10", "", "SELECT * FROM readings", nil)
		if !strings.Contains(string(r.body), `"row_count":10,"truncated":true`) || r.trailer.Get(TrailerTruncated) != "true" {
			t.Fatalf("%s / %v", r.body[len(r.body)-80:], r.trailer)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		r := post(t, url+"?format=xml", "", "SELECT 1", nil)
		if r.status != http.StatusNotAcceptable || !strings.Contains(string(r.body), "use json, ndjson, csv, parquet or arrow") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestErrors(t *testing.T) {
	cfg := query.DefaultConfig()
	cfg.Timeout = 300 * time.Millisecond
	base, _ := serve(t, cfg, httpapi.Config{})
	url := base + Path
	cases := []struct {
		name, sql string
		status    int
		kind      string
		line, col int
	}{
		{"syntax", "SELECT count(*)\nFROM readings\nWHERE = 1", 400, "invalid", 3, 7},
		{"unknown column", "SELECT nope FROM readings", 400, "invalid", 1, 8},
		{"runtime", "SELECT 'x'::INTEGER", 422, "execution", 1, 11},
		{"timeout", "SELECT count(*) FROM range(100000000000)", 408, "timeout", 0, 0},
		{"empty", "  -- nothing\n", 400, "invalid", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, url, "", c.sql, nil)
			var got errorBody
			if err := json.Unmarshal(r.body, &got); err != nil || r.status != c.status {
				t.Fatalf("%d %s (%v), want %d", r.status, r.body, err, c.status)
			}
			if got.Error.Kind != c.kind || got.Error.Line != c.line || got.Error.Column != c.col {
				t.Fatalf("error = %+v, want %s at %d:%d", got.Error, c.kind, c.line, c.col)
			}
		})
	}
	if r := post(t, url, "application/json", `{"sql": 1}`, nil); r.status != 400 || !strings.Contains(string(r.body), "request body") {
		t.Fatalf("bad JSON: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("GET", url, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Fatalf("GET: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestEscapesAreRefused(t *testing.T) {
	base, dir := serve(t, query.DefaultConfig(), httpapi.Config{})
	for _, c := range testkit.SQLEscapes {
		t.Run(c.Name, func(t *testing.T) {
			r := post(t, base+Path, "", c.Query(dir), nil)
			var got errorBody
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if (r.status != 403 && r.status != 400) || !strings.Contains(got.Error.Message, c.Want) {
				t.Fatalf("%d %+v, want a refusal saying %q", r.status, got.Error, c.Want)
			}
		})
	}
}

func TestAuthCoversQueries(t *testing.T) {
	base, _ := serve(t, query.DefaultConfig(), httpapi.Config{Token: "s3cret"})
	if r := post(t, base+Path, "", "SELECT 1", nil); r.status != 401 {
		t.Fatalf("without the token: %d", r.status)
	}
	if r := post(t, base+Path, "", "SELECT 1", map[string]string{"Authorization": "Bearer s3cret"}); r.status != 200 {
		t.Fatalf("with the token: %d %s", r.status, r.body)
	}
}

// TestLargeResultStreams reads a 1M-row CSV result as it arrives: the first bytes come before the
// whole body is encoded.
func TestLargeResultStreams(t *testing.T) {
	base, _ := serve(t, query.DefaultConfig(), httpapi.Config{})
	req, _ := http.NewRequest("POST", base+Path+"?format=csv", strings.NewReader("SELECT range AS i, range * 0.5 AS half FROM range(1000000)"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 {
		t.Fatalf("not streamed: content length %d, transfer encoding %v", resp.ContentLength, resp.TransferEncoding)
	}
	r := csv.NewReader(resp.Body)
	n := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && rec[0] != strings.TrimSpace(rec[0]) {
			t.Fatal(rec)
		}
		n++
	}
	if n != 1_000_001 || resp.Trailer.Get(TrailerRows) != "1000000" {
		t.Fatalf("%d records (with header), trailer rows %q", n, resp.Trailer.Get(TrailerRows))
	}
}
