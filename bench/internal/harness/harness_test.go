package harness

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	cases := []struct {
		name   string
		metric string
		labels []string
		want   string
	}{
		{"no labels", "up", nil, "up"},
		{"one label", "sluice_stage_records_total", []string{"stage", "decoder"}, `sluice_stage_records_total{stage="decoder"}`},
		{"sorted by name", "m", []string{"z", "1", "a", "2"}, `m{a="2",z="1"}`},
		{"odd count ignores the last", "m", []string{"a"}, "m"},
		{"quotes escaped", "m", []string{"a", `x"y`}, `m{a="x\"y"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Key(c.metric, c.labels...); got != c.want {
				t.Fatalf("Key = %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP sluice_stage_records_total Log records processed by the stage.
# TYPE sluice_stage_records_total counter
sluice_stage_records_total{stage="archiver"} 1500
sluice_stage_records_total{stage="decoder"} 1499
# TYPE sluice_wal_next_offset gauge
sluice_wal_next_offset 1.5e+06
# TYPE sluice_broker_append_errors_total counter
sluice_broker_append_errors_total{qos="1"} 3
# TYPE sluice_wal_fsync_duration_seconds histogram
sluice_wal_fsync_duration_seconds_bucket{le="0.001"} 10
sluice_wal_fsync_duration_seconds_bucket{le="+Inf"} 12
sluice_wal_fsync_duration_seconds_sum 0.25
sluice_wal_fsync_duration_seconds_count 12
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		metric string
		labels []string
		want   float64
	}{
		{"counter with label", "sluice_stage_records_total", []string{"stage", "decoder"}, 1499},
		{"other label value", "sluice_stage_records_total", []string{"stage", "archiver"}, 1500},
		{"gauge in exponent form", "sluice_wal_next_offset", nil, 1_500_000},
		{"histogram count", "sluice_wal_fsync_duration_seconds_count", nil, 12},
		{"histogram sum", "sluice_wal_fsync_duration_seconds_sum", nil, 0.25},
		{"absent is 0", "sluice_nothing", nil, 0},
		{"absent label value is 0", "sluice_broker_append_errors_total", []string{"qos", "0"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := m.Get(c.metric, c.labels...); got != c.want {
				t.Fatalf("%s = %v, want %v", Key(c.metric, c.labels...), got, c.want)
			}
		})
	}
	if len(m) != 6 {
		t.Fatalf("parsed %d samples, want 6: %v", len(m), m)
	}
	if _, err := ParseMetrics(strings.NewReader("not a metric line {")); err == nil {
		t.Fatal("a malformed exposition parsed without error")
	}
}

func TestParseVmHWM(t *testing.T) {
	cases := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"real shape", "Name:\tsluice\nVmPeak:\t 2000000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n", 123456 << 10, false},
		{"zero", "VmHWM: 0 kB\n", 0, false},
		{"missing", "Name:\tkworker\nState:\tI (idle)\n", 0, true},
		{"empty", "", 0, true},
		{"no unit", "VmHWM: 12\n", 0, true},
		{"other unit", "VmHWM: 12 MB\n", 0, true},
		{"not a number", "VmHWM: twelve kB\n", 0, true},
		{"negative", "VmHWM: -5 kB\n", 0, true},
		{"absurd", "VmHWM: 99999999999999 kB\n", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseVmHWM([]byte(c.status))
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("ParseVmHWM = %d, %v; want %d, error %v", got, err, c.want, c.wantErr)
			}
		})
	}
	if _, err := ParseVmHWM([]byte("Name: x\n")); !errors.Is(err, ErrNoVmHWM) {
		t.Fatalf("missing line: %v, want ErrNoVmHWM", err)
	}
}

func TestPeakRSSOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1
	}
	n, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if n < 64<<20 {
		t.Fatalf("peak RSS %d bytes after touching 64 MiB", n)
	}
	_ = big[len(big)-1]
}

func FuzzParseVmHWM(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("VmHWM:"))
	f.Add([]byte("VmHWM:\t  123456 kB\n"))
	f.Add([]byte("VmHWM:\t  " + strings.Repeat("9", 40) + " kB\n"))
	f.Add([]byte("VmHWM:\t  12 kB\nVmHWM: garbage\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseVmHWM(b)
		if err == nil && (n < 0 || n > 1<<50) {
			t.Fatalf("ParseVmHWM(%q) = %d without error", b, n)
		}
	})
}

// TestRSS: this process's VmRSS is positive and at most its VmHWM.
func TestRSS(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || rss > hwm {
		t.Fatalf("VmRSS %d, VmHWM %d", rss, hwm)
	}
	if n, found, err := parseStatusKB([]byte("Name:\tx\nVmHWM:\t12 kB\n"), "VmRSS"); found || err != nil || n != 0 {
		t.Fatalf("status without VmRSS: %d, found %v, %v", n, found, err)
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, c := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "1234 (sluice) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 5 1000 100", 3250 * time.Millisecond, false},
		{"spaces and parentheses in the name", "99 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0", 100 * time.Millisecond, false},
		{"no name", "1234 sluice S 1", 0, true},
		{"too short", "1 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 3 0", 0, true},
		{"negative", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 3 0", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseStatCPU([]byte(c.stat))
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("ParseStatCPU = %v, %v; want %v, error %v", got, err, c.want, c.wantErr)
			}
		})
	}
}

// TestProcessCPUOfThisProcess: the CPU time /proc reports grows with work done and agrees with
// getrusage.
func TestProcessCPUOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		x++
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self := SelfCPU()
	if d := after - before; d < 200*time.Millisecond {
		t.Fatalf("300ms of spinning added %v of CPU time (%d loops)", d, x)
	}
	if after > self+50*time.Millisecond {
		t.Fatalf("/proc says %v, getrusage %v (read after it)", after, self)
	}
}

func TestParseRSSParts(t *testing.T) {
	status := "Name:\tsluice\nVmHWM:\t  600 kB\nVmRSS:\t  500 kB\nRssAnon:\t  380 kB\nRssFile:\t  115 kB\nRssShmem:\t 5 kB\n"
	got, err := ParseRSSParts([]byte(status))
	if err != nil || got != (RSSParts{RSS: 500 << 10, Anon: 380 << 10, File: 115 << 10}) {
		t.Fatalf("ParseRSSParts = %+v, %v", got, err)
	}
	for _, drop := range []string{"VmRSS", "RssAnon", "RssFile"} {
		var lines []string
		for _, l := range strings.Split(status, "\n") {
			if !strings.HasPrefix(l, drop+":") {
				lines = append(lines, l)
			}
		}
		if _, err := ParseRSSParts([]byte(strings.Join(lines, "\n"))); err == nil || !strings.Contains(err.Error(), drop) {
			t.Fatalf("status without %s: error %v, want one naming it", drop, err)
		}
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		p, err := ReadRSSParts(os.Getpid())
		if err != nil || p.RSS <= 0 || p.Anon+p.File > p.RSS || p.Anon <= 0 || p.File <= 0 {
			t.Fatalf("this process: %+v, %v", p, err)
		}
	}
}
