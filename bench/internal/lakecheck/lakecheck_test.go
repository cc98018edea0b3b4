package lakecheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
)

func writeLog(t *testing.T, lakeDir, table string, commits ...string) {
	t.Helper()
	dir := filepath.Join(lakeDir, table, "_delta_log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for v, c := range commits {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.json", v)), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTables(t *testing.T) {
	cases := []struct {
		name    string
		commits []string
		extra   []string // other files in _delta_log
		want    []File   // paths relative to the table
		wantErr string
	}{
		{"no log", nil, nil, nil, ""},
		{"adds with stats", []string{
			`{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}` + "\n" + `{"metaData":{"id":"x"}}`,
			`{"add":{"path":"date=2026-01-01/a.parquet","size":100,"stats":"{\"numRecords\":7}"}}` + "\n" + `{"txn":{"appId":"decoder-p0","version":6}}`,
			`{"add":{"path":"date=2026-01-02/b%20c.parquet","size":50}}`,
		}, nil, []File{{"date=2026-01-01/a.parquet", 100, 7}, {"date=2026-01-02/b c.parquet", 50, -1}}, ""},
		{"remove takes a file out", []string{
			`{"add":{"path":"a.parquet","size":1,"stats":"{\"numRecords\":1}"}}` + "\n" + `{"add":{"path":"b.parquet","size":2,"stats":"{\"numRecords\":2}"}}`,
			`{"remove":{"path":"a.parquet","dataChange":false}}`,
		}, nil, []File{{"b.parquet", 2, 2}}, ""},
		{"checkpoints and temporary files are not commits", []string{`{"add":{"path":"a.parquet","size":1}}`},
			[]string{"00000000000000000000.checkpoint.parquet", "_last_checkpoint", "00000000000000000001.json.tmp", ".00000000000000000001.json.crc"},
			[]File{{"a.parquet", 1, -1}}, ""},
		{"path escaping the table", []string{`{"add":{"path":"../../etc/passwd","size":1}}`}, nil, nil, "not a relative path"},
		{"absolute path", []string{`{"add":{"path":"/etc/passwd","size":1}}`}, nil, nil, "not a relative path"},
		{"negative size", []string{`{"add":{"path":"a.parquet","size":-1}}`}, nil, nil, "negative size"},
		{"bad JSON", []string{`{"add":`}, nil, nil, "action"},
		{"bad stats", []string{`{"add":{"path":"a.parquet","size":1,"stats":"{"}}`}, nil, nil, "stats"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.commits != nil {
				writeLog(t, dir, "readings", c.commits...)
			}
			for _, x := range c.extra {
				os.WriteFile(filepath.Join(dir, "readings", "_delta_log", x), []byte("{}"), 0o644)
			}
			got, err := Tables(dir, "readings")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Tables = %v, %v; want an error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("Tables = %+v, want %+v", got, c.want)
			}
			for i, w := range c.want {
				w.Path = filepath.Join(dir, "readings", filepath.FromSlash(w.Path))
				if got[i] != w {
					t.Fatalf("file %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestTablesMissingVersion(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, "raw", `{"add":{"path":"a.parquet","size":1}}`, `{"add":{"path":"b.parquet","size":1}}`)
	os.Remove(filepath.Join(dir, "raw", "_delta_log", fmt.Sprintf("%020d.json", 0)))
	if _, err := Tables(dir, "raw"); err == nil || !strings.Contains(err.Error(), "version 0 missing") {
		t.Fatalf("Tables = %v, want version 0 missing", err)
	}
}

func TestBytes(t *testing.T) {
	size, rows := Bytes([]File{{Size: 10, Rows: 3}, {Size: 5, Rows: -1}, {Size: 1, Rows: 0}})
	if size != 16 || rows != 3 {
		t.Fatalf("Bytes = %d, %d; want 16, 3", size, rows)
	}
}

// TestChecker writes a lake with sluice's own writer and checks the counts DuckDB reads back.
func TestChecker(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "lake")
	lk, err := lake.Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	w, err := lake.NewWriter(ctx, lk, lake.ReadingsSpec(), lake.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	row := func(sensor string, sec int, v float64) lake.Reading {
		return lake.Reading{Series: &lake.Series{SensorID: sensor, Metric: "temperature"}, TS: base.Add(time.Duration(sec) * time.Second).UnixMicro(), Value: v}
	}
	w.Add(row("s1", 0, 1.5))
	w.Add(row("s1", 1, 2.5))
	w.Add(row("s2", 0, 3.5))
	w.Add(row("s2", 0, 3.5)) // a duplicate
	w.Add(row("s3", 0, 9))   // stored with another value than the truth says
	w.Add(row("sentinel", 0, 0))
	if _, err := w.Commit(ctx, "test", 1); err != nil {
		t.Fatal(err)
	}
	truth := filepath.Join(t.TempDir(), "truth.ndjson")
	line := func(sensor string, sec int, v float64, fault string) string {
		return fmt.Sprintf(`{"seq":1,"sensor_id":%q,"metric":"temperature","ts":%q,"value":%v,"fault":%q,"topic":"sensors"}`+"\n",
			sensor, base.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano), v, fault)
	}
	os.WriteFile(truth, []byte(line("s1", 0, 1.5, "")+line("s1", 1, 2.5, "")+line("s2", 0, 3.5, "")+line("s3", 0, 4, "")+
		line("s4", 0, 1, "")+line("s9", 0, 1, "malformed")), 0o644)

	chk, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer chk.Close()
	rd, err := chk.Readings(ctx, "sentinel")
	if err != nil {
		t.Fatal(err)
	}
	if rd != (Readings{Rows: 5, Distinct: 4}) || rd.Duplicates() != 1 {
		t.Fatalf("Readings = %+v, want 5 rows, 4 distinct", rd)
	}
	tr, err := chk.AgainstTruth(ctx, truth)
	if err != nil {
		t.Fatal(err)
	}
	if tr != (Truth{Expected: 5, Found: 4, WrongValue: 1, Lost: 1}) {
		t.Fatalf("AgainstTruth = %+v, want 5 expected, 4 found, 1 wrong value, 1 lost", tr)
	}
	for _, c := range []struct {
		sensor string
		want   bool
	}{{"sentinel", true}, {"nobody", false}} {
		if got, err := chk.HasSensor(ctx, c.sensor); err != nil || got != c.want {
			t.Fatalf("HasSensor(%s) = %v, %v; want %v", c.sensor, got, err, c.want)
		}
	}
	if n, err := chk.ReadAll(ctx, "readings"); err != nil || n != 6 {
		t.Fatalf("ReadAll = %d, %v; want 6", n, err)
	}
	// Tables that do not exist count nothing.
	if n, err := chk.Count(ctx, "raw"); err != nil || n != 0 {
		t.Fatalf("Count(raw) = %d, %v; want 0", n, err)
	}
	if q, err := chk.Quarantine(ctx); err != nil || q != nil {
		t.Fatalf("Quarantine = %v, %v; want none", q, err)
	}
	// A damaged committed file is reported, not skipped.
	files, err := Tables(dir, "readings")
	if err != nil || len(files) != 1 {
		t.Fatalf("Tables = %v, %v", files, err)
	}
	if err := os.WriteFile(files[0].Path, []byte("PAR1 this is not parquet PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := chk.ReadAll(ctx, "readings"); err == nil {
		t.Fatal("ReadAll of a damaged file succeeded")
	}
}

func FuzzApplyCommit(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte(`{"add":`))
	f.Add([]byte(`{"add":{"path":"a.parquet","size":1,"stats":"{\"numRecords\":7}"}}` + "\n" + `{"remove":{"path":"a.parquet"}}`))
	f.Add([]byte(`{"add":{"path":"` + strings.Repeat("a/", 5000) + `x","size":9223372036854775807}}`))
	f.Add([]byte(`{"add":{"path":"a.parquet","size":1}}` + "\n\x00\xff garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		live := map[string]File{}
		if err := applyCommit(data, live); err != nil {
			return
		}
		for p, file := range live {
			if p == "" || filepath.IsAbs(p) || !filepath.IsLocal(filepath.FromSlash(p)) || file.Size < 0 || file.Rows < -1 {
				t.Fatalf("accepted %q: %+v", p, file)
			}
		}
	})
}
