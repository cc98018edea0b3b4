package lake

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want []string // "key: problem" prefixes, in order
	}{
		{"defaults", func(*Config) {}, nil},
		{"s3 url", func(c *Config) { c.URL = "s3://bucket/lake?region=eu-west-1" }, nil},
		{"unknown scheme", func(c *Config) { c.URL = "ftp://host/lake" }, []string{`url: scheme "ftp" is not supported`}},
		{"file without path", func(c *Config) { c.URL = "file://" }, []string{"url: file:// URL without an absolute path"}},
		{"relative file path", func(c *Config) { c.URL = "file://data/lake" }, []string{"url: file:// URL without an absolute path"}},
		{"bad url", func(c *Config) { c.URL = "file://%zz" }, []string{`url: "file://%zz" is not a URL`}},
		{"zero interval", func(c *Config) { c.FlushInterval = 0 }, []string{"flush_interval: 0s is not positive"}},
		{"negative limits", func(c *Config) { c.FlushRows, c.FlushBytes = -1, -1 }, []string{"flush_rows: -1 is negative", "flush_bytes: -1 is negative"}},
		{"codec", func(c *Config) { c.Compression = "lz4" }, []string{`compression: "lz4" is not a codec`}},
		{"level", func(c *Config) { c.CompressionLevel = "max" }, []string{`compression_level: "max" is not a level`}},
		{"row groups", func(c *Config) { c.RowGroupRows = 10 }, []string{"row_group_rows: 10 is below 1024"}},
		{"checkpoints", func(c *Config) { c.CheckpointInterval = -5 }, []string{"checkpoint_interval: -5 is negative"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.edit(&cfg)
			var got []string
			for _, e := range cfg.Validate() {
				got = append(got, e.Key+": "+e.Problem)
				if e.Fix == "" {
					t.Errorf("%s has no fix", e.Key)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("Validate = %q, want %q", got, c.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Fatalf("Validate = %q, want %q", got, c.want)
				}
			}
		})
	}
	d := DefaultConfig()
	if d.FlushInterval != time.Minute || d.FlushRows != 1_000_000 || d.FlushBytes != 128<<20 || d.Compression != "zstd" || d.CheckpointInterval != 100 {
		t.Fatalf("DefaultConfig = %+v", d)
	}
	if _, err := NewWriter(context.Background(), nil, ReadingsSpec(), Config{}); err == nil {
		t.Fatal("NewWriter accepted an invalid config")
	}
}

func TestOrder(t *testing.T) {
	spec := ReadingsSpec()
	// A Series per row: rows of one sensor need not share one.
	r := func(sensor string, ts int64, id int64) Reading {
		return Reading{Series: &Series{SensorID: sensor, Metric: "m"}, TS: ts, IngestID: id}
	}
	// Shared Series, as the decoder interns them: two of sensor a (its unit changed), one each of m
	// and z.
	sa, sa2 := &Series{SensorID: "a", Metric: "m"}, &Series{SensorID: "a", Metric: "m", Unit: "C"}
	sm, sz := &Series{SensorID: "m", Metric: "m"}, &Series{SensorID: "z", Metric: "m"}
	rs := func(s *Series, ts int64, id int64) Reading { return Reading{Series: s, TS: ts, IngestID: id} }
	const day = microsPerDay
	cases := []struct {
		name  string
		rows  []Reading
		parts []int64   // partition keys, in order
		want  [][]int64 // ingest ids per partition, in file order
	}{
		{"one partition in order", []Reading{r("a", 1, 1), r("a", 2, 2), r("b", 1, 3)}, []int64{0}, [][]int64{{1, 2, 3}}},
		{"interleaved sensors", []Reading{r("b", 1, 1), r("a", 1, 2), r("b", 2, 3), r("a", 2, 4)}, []int64{0}, [][]int64{{2, 4, 1, 3}}},
		{"shared series", []Reading{rs(sz, 1, 1), rs(sa, 1, 2), rs(sm, 1, 3), rs(sa2, 2, 4), rs(sa, 3, 5), rs(sz, 2, 6), rs(sm, 2, 7)}, []int64{0},
			[][]int64{{2, 4, 5, 3, 7, 1, 6}}},
		{"late reading", []Reading{r("a", 5, 1), r("a", 6, 2), r("a", 2, 3), r("a", 7, 4)}, []int64{0}, [][]int64{{3, 1, 2, 4}}},
		{"reversed", []Reading{r("a", 9, 1), r("a", 8, 2), r("a", 7, 3), r("a", 6, 4), r("a", 5, 5), r("a", 4, 6), r("a", 3, 7), r("a", 2, 8), r("a", 1, 9), r("a", 0, 10)}, []int64{0},
			[][]int64{{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}}},
		{"across days, out of order", []Reading{r("b", day+1, 1), r("a", 3, 2), r("a", -1, 3), r("a", day, 4)}, []int64{-1, 0, 1}, [][]int64{{3}, {2}, {4, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parts, perm := order(&spec, c.rows)
			var keys []int64
			var got [][]int64
			for _, p := range parts {
				keys = append(keys, p.key)
				var ids []int64
				for i := p.lo; i < p.hi; i++ {
					j := i
					if perm != nil {
						j = int(perm[i])
					}
					ids = append(ids, c.rows[j].IngestID)
				}
				got = append(got, ids)
			}
			if fmt.Sprint(keys) != fmt.Sprint(c.parts) || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("order = partitions %v %v, want %v %v", keys, got, c.parts, c.want)
			}
		})
	}
	// Without Cluster: raw/ keeps ingest order, and in-order rows need no permutation.
	raw := RawSpec()
	rows := []RawRow{{IngestID: 1, ReceivedAt: 10}, {IngestID: 2, ReceivedAt: 20}}
	if parts, perm := order(&raw, rows); perm != nil || len(parts) != 1 || parts[0].hi != 2 {
		t.Fatalf("in-order raw rows: %v %v", parts, perm)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	lk, err := Open(ctx, "mem://", WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	w, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testReadings(70) {
		w.Add(r)
	}
	if _, err := w.Commit(ctx, "d", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx, "d", 1); err != nil { // already landed
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"sluice_lake_commits_total": 1, "sluice_lake_rows_total": 70, "sluice_lake_files_total": 1,
		"sluice_lake_commits_already_landed_total": 1, "sluice_lake_table_version": 1, "sluice_lake_commit_errors_total": 0,
	} {
		c, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range c {
			if mf.GetName() == name {
				found = true
				m := mf.GetMetric()[0]
				got := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				if got != want || m.GetLabel()[0].GetValue() != "readings" {
					t.Errorf("%s{table=%s} = %v, want %v", name, m.GetLabel()[0].GetValue(), got, want)
				}
			}
		}
		if !found && want != 0 {
			t.Errorf("%s not registered", name)
		}
	}
	if n := testutil.CollectAndCount(reg, "sluice_lake_commit_seconds"); n != 1 {
		t.Errorf("commit_seconds has %d series", n)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		url     string
		wantErr string
	}{
		{"mem://", ""},
		{"mem://ignored/lake", ""},
		{"file://" + t.TempDir() + "/new/lake", ""},
		{"file://relative/lake", "want file:///absolute/path"},
		{"nosuch://bucket", "open lake"},
		{"%zz", "open lake"},
	}
	for _, c := range cases {
		lk, err := Open(ctx, c.url)
		if c.wantErr == "" {
			if err != nil {
				t.Errorf("Open(%q): %v", c.url, err)
				continue
			}
			if lk.URL() != c.url {
				t.Errorf("URL() = %q, want %q", lk.URL(), c.url)
			}
			if err := lk.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("Open(%q) = %v, want an error containing %q", c.url, err, c.wantErr)
		}
	}
}
