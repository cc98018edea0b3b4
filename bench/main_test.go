package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/bench/internal/harness"
)

// testEnv is the environment of the short measurements: the sluice binary is built once.
var testEnv *env

func TestMain(m *testing.M) {
	harness.MaybeServeMochi()
	os.Exit(func() int {
		ws, err := harness.NewWorkspace("bench-test", false, os.Stderr)
		if err == nil {
			defer ws.Close()
			err = ws.Build(context.Background())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		testEnv = &env{root: ws.Root, work: ws.Work, bin: ws.Bin, quick: true, say: func(string, ...any) {}}
		return m.Run()
	}())
}

func quick(t *testing.T) (*env, plan) {
	t.Helper()
	testEnv.say = func(format string, args ...any) { t.Logf(format, args...) }
	kinds, err := brokerKinds("auto")
	if err != nil {
		t.Fatal(err)
	}
	return testEnv, quickPlan(1, kinds)
}

// figure returns the figure of s whose name starts with prefix.
func figure(t *testing.T, s *Section, prefix string) *Figure {
	t.Helper()
	for _, f := range s.Figures {
		if strings.HasPrefix(f.Name, prefix) {
			return f
		}
	}
	t.Fatalf("section %q has no figure %q", s.Title, prefix)
	return nil
}

func one(t *testing.T, f *Figure) float64 {
	t.Helper()
	if len(f.Values) != 1 {
		t.Fatalf("%s: %d values, want 1", f.Name, len(f.Values))
	}
	return f.Values[0]
}

// TestBrokerShort runs the broker measurement small, against every broker available: QoS 1 must lose
// nothing through sluice and reach the plain subscriber in full, and every rate must be measured.
func TestBrokerShort(t *testing.T) {
	e, p := quick(t)
	secs, errs := measureBroker(context.Background(), e, p.broker)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(secs) != len(p.broker.kinds) {
		t.Fatalf("%d sections for %d brokers", len(secs), len(p.broker.kinds))
	}
	for _, s := range secs {
		for _, name := range []string{"QoS 1: messages published but not in sluice's readings/", "QoS 1: messages the plain subscriber did not receive"} {
			if v := one(t, figure(t, s, name)); v != 0 {
				t.Errorf("%s: %s = %v, want 0", s.Title, name, v)
			}
		}
		for _, name := range []string{"QoS 0: broker ceiling", "QoS 1: broker ceiling", "QoS 0: sluice, readings", "QoS 1: sluice, readings", "QoS 1: publisher's own rate"} {
			if v := one(t, figure(t, s, name)); !(v > 0) {
				t.Errorf("%s: %s = %v, want a rate", s.Title, name, v)
			}
		}
		if strings.Contains(s.Title, "embedded") {
			if v := one(t, figure(t, s, "QoS 1: messages published but not in readings/, broker.pipeline: false")); v != 0 {
				t.Errorf("the broker without pipelining lost %v messages", v)
			}
		}
	}
}

// TestInprocessShort appends 50,000 envelopes and checks both tables hold every one exactly once.
func TestInprocessShort(t *testing.T) {
	e, _ := quick(t)
	c, err := makeCorpus(50_000, 1000, 1, time.Now().UTC().Truncate(time.Hour).Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c.len() != 50_000 {
		t.Fatalf("corpus of %d", c.len())
	}
	res, err := inprocessRun(context.Background(), e, c, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if res.readings != 50_000 || res.raw != 50_000 || !(res.total > 0) || !(res.appended >= res.total) {
		t.Fatalf("result %+v: want 50,000 readings and raw rows, and appends at least as fast as the whole", res)
	}
	// The CPU time is the run's: more than nothing, no more than every core busy for the whole run,
	// and, in a run without the read-back, no more than the process spent in the call (so not what it
	// spent before, such as the corpus).
	if most := time.Duration(runtime.GOMAXPROCS(0))*res.elapsed + 20*time.Millisecond; res.cpu <= 0 || res.cpu > most {
		t.Fatalf("CPU time %v over a run of %v: want more than 0 and at most %v", res.cpu, res.elapsed, most)
	}
	cpu0 := harness.SelfCPU()
	res, err = inprocessRun(context.Background(), e, c, "", false)
	during := harness.SelfCPU() - cpu0
	if err != nil {
		t.Fatal(err)
	}
	if res.cpu <= 0 || res.cpu > during {
		t.Fatalf("CPU time %v of a run without read-back: want more than 0 and at most the %v the call took", res.cpu, during)
	}
	for i, name := range stageNames {
		// A stage's last commit holds the last record, so it comes after that record was appended.
		if res.behind[i] < 0 || res.behind[i] > 50_000 || res.tail[i] <= 0 || res.tail[i] > res.elapsed {
			t.Fatalf("%s: %d records behind at the last append, last commit %s after it (run %s): want 0-50,000 and within the run",
				name, res.behind[i], res.tail[i], res.elapsed)
		}
	}
}

// TestStorageShort writes two simulated minutes of 100 sensors: files are cut by rows, and the bytes
// per reading stay in a sane band (a regression guard, far looser than the targets).
func TestStorageShort(t *testing.T) {
	e, _ := quick(t)
	res, err := storageRun(context.Background(), e, storageCase{fleet: 100, minutes: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.messages != 12_000 || res.rawFiles != 2 || res.readingsFiles != 2 {
		t.Fatalf("result %+v: want 12,000 messages in 2 raw and 2 readings files", res)
	}
	for name, b := range map[string]int64{"raw": res.rawBytes, "readings": res.readingsBytes} {
		if per := float64(b) / 12_000; per < 1 || per > 40 {
			t.Errorf("%s: %.2f bytes per reading", name, per)
		}
	}
}

// TestMemoryShort runs sluice for two seconds with 1,000 sensors: everything acknowledged is in the
// lake, and the peak RSS is read.
func TestMemoryShort(t *testing.T) {
	e, p := quick(t)
	p.memory.duration = 2 * time.Second
	res, err := memoryRun(context.Background(), e, 1000, p.memory, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.published == 0 || res.inLake != res.published {
		t.Fatalf("published %d, %d in the lake", res.published, res.inLake)
	}
	if res.peak < 10<<20 || res.peak > 8<<30 || res.atExit < res.peak {
		t.Fatalf("peak RSS %d, at exit %d", res.peak, res.atExit)
	}
	// The split: a VmRSS sample is at most the peak VmHWM read after it, and Go holds part of it.
	if sp := res.split; sp.rss <= 0 || sp.rss > res.peak || sp.goHeld <= 0 || sp.goHeld >= sp.rss {
		t.Fatalf("split at the highest sample: rss %d, Go %d (peak %d)", sp.rss, sp.goHeld, res.peak)
	}
	// What a collection found live is in the heap the runtime holds, and it is not nothing.
	if sp := res.split; sp.maxLive < 1<<20 || sp.maxLive > res.peak {
		t.Fatalf("highest live heap %d (peak RSS %d)", sp.maxLive, res.peak)
	}
}

// TestFreshnessShort measures publish → visible in SQL briefly, or reports why it cannot.
func TestFreshnessShort(t *testing.T) {
	e, p := quick(t)
	s, errs := measureFreshness(context.Background(), e, p.freshness)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(s.Figures) == 0 {
		if !strings.HasPrefix(s.Intro, "Not measured: ") {
			t.Fatalf("no figures and no reason: %+v", s)
		}
		t.Skip(s.Intro)
	}
	p50, p99 := one(t, figure(t, s, "publish → visible, p50")), one(t, figure(t, s, "publish → visible, p99"))
	if !(p50 > 0 && p99 >= p50) {
		t.Fatalf("p50 %v ms, p99 %v ms", p50, p99)
	}
	if seen := one(t, figure(t, s, "readings seen")); seen < 0.9 {
		t.Fatalf("the poller saw %.3f of the readings", seen)
	}
}

func TestQuantiles(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	got := quantiles(vs, 0.5, 0.99, 1, 0)
	if want := []float64{5, 10, 10, 1}; !slices.Equal(got, want) {
		t.Fatalf("quantiles = %v, want %v", got, want)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown measurement", []string{"-only", "speed"}, `unknown measurement "speed"`},
		{"unknown broker", []string{"-brokers", "hivemq"}, `unknown broker "hivemq"`},
		{"bad fleet", []string{"-memory-fleets", "lots"}, `"lots" is not a fleet size`},
		{"unknown flag", []string{"-fast"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), c.args, &out, &errOut); code != 2 {
				t.Fatalf("exit code %d, want 2", code)
			}
			if !strings.Contains(errOut.String(), c.want) {
				t.Fatalf("stderr %q lacks %q", errOut.String(), c.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"one", []float64{3}, Summary{3, 3, 3}},
		{"odd", []float64{5, 1, 3}, Summary{1, 3, 5}},
		{"even: mean of the middle two", []float64{4, 1, 2, 10}, Summary{1, 3, 10}},
		{"NaN left out", []float64{nan, 2, 4}, Summary{2, 3, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Summarize(c.in); got != c.want {
				t.Fatalf("Summarize(%v) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
	if s := Summarize(nil); !math.IsNaN(s.Min) || !math.IsNaN(s.Median) || !math.IsNaN(s.Max) {
		t.Fatalf("Summarize(nil) = %+v, want NaNs", s)
	}
}

func TestFormatNum(t *testing.T) {
	cases := []struct {
		v      float64
		digits int
		want   string
	}{
		{0, 0, "0"}, {999, 0, "999"}, {1000, 0, "1,000"}, {1234567.6, 0, "1,234,568"}, {-45000, 0, "-45,000"},
		{0.9512, 3, "0.951"}, {5.3749, 2, "5.37"}, {math.NaN(), 0, "–"},
	}
	for _, c := range cases {
		if got := formatNum(c.v, c.digits); got != c.want {
			t.Errorf("formatNum(%v, %d) = %q, want %q", c.v, c.digits, got, c.want)
		}
	}
}

func TestVerdictsAndReport(t *testing.T) {
	s := &Section{Title: "T"}
	s.Add("rate", "msg/s", 0).Goal(100, true).Values = []float64{90, 120, 110}
	s.Add("size", "bytes", 2).Goal(6, false).Values = []float64{7, 7.5}
	s.Add("lost", "messages", 0).MustBe(0, false).Values = []float64{0, 1, 0}
	s.Add("plain", "x", 0).Values = []float64{1}
	want := []string{"pass", "FAIL", "FAIL", ""}
	for i, f := range s.Figures {
		if got := f.Verdict(); got != want[i] {
			t.Errorf("%s: verdict %q, want %q", f.Name, got, want[i])
		}
	}
	r := &Report{Command: "go run ./bench", Sections: []*Section{s}}
	if !r.Broken() {
		t.Fatal("a lost message in one run must break the report")
	}
	s.Figures[2].Values = []float64{0, 0}
	if r.Broken() {
		t.Fatal("missed performance goals alone must not break the report")
	}
	md := r.Markdown()
	for _, line := range []string{
		"| rate | 90 | 110 | 120 | msg/s | 3 | ≥ 100 | pass |",
		"| size | 7.00 | 7.25 | 7.50 | bytes | 2 | ≤ 6.00 | FAIL |",
		"| lost | 0 | 0 | 0 | messages | 2 | ≤ 0 | pass |",
		"| plain | 1 | 1 | 1 | x | 1 |  |  |",
	} {
		if !strings.Contains(md, line+"\n") {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}
}

func TestSeries(t *testing.T) {
	var s series
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, v := range []float64{0, 0, 100, 300, 300, 1000} {
		s.add(t0.Add(time.Duration(i)*time.Second), v)
	}
	cases := []struct {
		name string
		x    float64
		want time.Duration // after t0; -1: never
	}{
		{"first sample", 0, 0},
		{"interpolated", 50, 1500 * time.Millisecond},
		{"exactly on a sample", 300, 3 * time.Second},
		{"after a flat stretch", 650, 4500 * time.Millisecond},
		{"never", 1001, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at, ok := s.reached(c.x)
			if c.want < 0 {
				if ok {
					t.Fatalf("reached %v at %v", c.x, at)
				}
				return
			}
			if !ok || at.Sub(t0) != c.want {
				t.Fatalf("reached(%v) = %v, %v; want %v", c.x, at.Sub(t0), ok, c.want)
			}
		})
	}
	// 100 → 1000 takes 2s → 5s: 900 per 3s.
	if got := s.slope(100, 1000); got != 300 {
		t.Fatalf("slope = %v, want 300", got)
	}
	if got := s.slope(100, 2000); !math.IsNaN(got) {
		t.Fatalf("slope to a level never reached = %v, want NaN", got)
	}
}

// BenchmarkPipelineInprocess is the in-process measurement as a Go benchmark: each iteration appends
// 200,000 envelopes to a fresh WAL while the archiver and decoder commit them to a fresh lake.
//
//	go test -run '^$' -bench PipelineInprocess -benchtime 3x ./bench
func BenchmarkPipelineInprocess(b *testing.B) {
	c, err := makeCorpus(200_000, 10_000, 1, time.Now().UTC().Truncate(time.Hour).Add(-2*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	e := &env{root: testEnv.root, work: b.TempDir(), say: func(string, ...any) {}}
	b.SetBytes(int64(len(c.data))) // per iteration: the encoded envelopes
	b.ReportAllocs()
	var rate float64
	for b.Loop() {
		res, err := inprocessRun(context.Background(), e, c, "", false)
		if err != nil {
			b.Fatal(err)
		}
		rate += res.total
	}
	b.ReportMetric(rate/float64(b.N), "readings/s")
}

func TestStageBusy(t *testing.T) {
	tags := ` stage: Total 4.71s of 4.76s (98.95%)
        3.01s (63.24%): decoder
        1.38s (28.99%): archiver
        240ms ( 5.04%): wal
         80ms ( 1.68%): append
`
	got := stageBusy(tags, 3010*time.Millisecond)
	want := "Each stage's CPU time as a share of one core over the run's wall time: decoder 100%, archiver 46%, wal 8%, append 3%."
	if !strings.HasPrefix(got, want) {
		t.Fatalf("stageBusy = %q, want it to start with %q", got, want)
	}
	if got := stageBusy("go tool pprof -tags: exit status 1", time.Second); got != "" {
		t.Fatalf("stageBusy of an error = %q, want \"\"", got)
	}
}
