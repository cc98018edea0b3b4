package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/bench/internal/lakecheck"
	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/log/wal"
)

// inprocessPlan sizes the in-process measurement.
type inprocessPlan struct {
	n       int // readings per run
	fleet   int
	runs    int
	warmup  bool // one run first, reported on its own, not among the runs
	profile bool // one more run, CPU-profiled, whose summary goes into the report
}

// inprocessResult is one run.
type inprocessResult struct {
	total    float64          // readings/s, first append to both stages committed
	appended float64          // records/s made durable by the WAL (the appends alone)
	behind   [2]int64         // records the archiver and the decoder had yet to process when the last append was durable
	tail     [2]time.Duration // from then until each stage had committed everything
	readings int64            // distinct readings in the lake afterwards
	raw      int64            // rows in raw/ afterwards
	elapsed  time.Duration
	cpu      time.Duration // the process's CPU time (user + system) over the run
}

// measureInprocess measures the pipeline without the network: WAL → archiver + decoder → lake.
func measureInprocess(ctx context.Context, e *env, plan inprocessPlan) (*Section, []string) {
	s := &Section{Title: "In-process pipeline (no network): decode → durable log → lake"}
	s.Intro = fmt.Sprintf("%s envelopes of the nested shape (%s sensors, 1 Hz), encoded before the clock starts, appended to the WAL "+
		"(fsync on, default settings) with AppendAsync in batches of 1,024 while the archiver and decoder run on it and commit to a file:// lake "+
		"with the default lake settings (1M rows or 128 MiB per commit); the clock stops when both have committed everything.",
		formatNum(float64(plan.n), 0), formatNum(float64(plan.fleet), 0))
	if plan.warmup {
		s.Intro += " The runs follow a first run in the same process, reported on its own row and not among them: its heap grows from " +
			"nothing, which a long-running sluice pays once (perf stat counted about 225,000 page faults in a first run, 50,000-100,000 in later ones)."
	}
	total := s.Add("readings/s into the lake (raw/ and readings/ committed)", "readings/s", 0).Goal(1_000_000, true)
	appended := s.Add("WAL appends alone (durable, while the stages run)", "records/s", 0)
	cpuPer := s.Add("CPU per reading: the process's CPU time (user + system, every stage and the appends) over the run, per reading", "µs", 2)
	var behind, tail [2]*Figure
	for i, name := range stageNames {
		behind[i] = s.Add(fmt.Sprintf("records the %s had yet to process when the last append was durable", name), "records", 0)
	}
	for i, name := range stageNames {
		tail[i] = s.Add(fmt.Sprintf("from the last append durable to the %s's last commit", name), "ms", 0)
	}
	var cold *Figure
	if plan.warmup {
		cold = s.Add("readings/s into the lake, the process's first run (cold heap; not among the runs above)", "readings/s", 0)
	}
	var errs []string
	start := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	e.say("in-process: generating %d messages", plan.n)
	c, err := makeCorpus(plan.n, plan.fleet, 1, start)
	if err != nil {
		return s, []string{"in-process: " + err.Error()}
	}
	if plan.warmup {
		res, err := inprocessRun(ctx, e, c, "", true)
		if err != nil {
			errs = append(errs, fmt.Sprintf("in-process first run: %v", err))
		} else {
			e.say("in-process first run (cold, on its own row): %.0f readings/s", res.total)
			cold.Values = append(cold.Values, res.total)
		}
	}
	for r := range plan.runs {
		res, err := inprocessRun(ctx, e, c, "", true)
		if err != nil {
			errs = append(errs, fmt.Sprintf("in-process run %d: %v", r+1, err))
			continue
		}
		e.say("in-process run %d/%d: %.0f readings/s (WAL alone %.0f records/s)", r+1, plan.runs, res.total, res.appended)
		total.Values = append(total.Values, res.total)
		appended.Values = append(appended.Values, res.appended)
		cpuPer.Values = append(cpuPer.Values, float64(res.cpu.Nanoseconds())/1000/float64(c.len()))
		for i := range stageNames {
			behind[i].Values = append(behind[i].Values, float64(res.behind[i]))
			tail[i].Values = append(tail[i].Values, float64(res.tail[i].Microseconds())/1000)
		}
	}
	if med := Summarize(cpuPer.Values).Median; med > 0 {
		cores := runtime.GOMAXPROCS(0)
		s.Notes = append(s.Notes, fmt.Sprintf("CPU budget: at %.2f µs of CPU per reading (median), %d cores sustain at most about %s readings/s, "+
			"with every stage busy on every core all the time; 1,000,000 readings/s on them needs at most %.2f µs per reading.",
			med, cores, formatNum(float64(cores)*1e6/med, 0), float64(cores)))
	}
	if plan.profile {
		dir, err := e.dir("inprocess-profile")
		if err != nil {
			return s, append(errs, err.Error())
		}
		prof := filepath.Join(dir, "cpu.pprof")
		res, err := inprocessRun(ctx, e, c, prof, true)
		if err != nil {
			return s, append(errs, "in-process profiled run: "+err.Error())
		}
		s.Notes = append(s.Notes, fmt.Sprintf("A further run under the CPU profiler reached %s readings/s in %s; its profile (cpu.pprof, kept in the "+
			"scratch directory with -keep) says where the time goes, by stage (pprof labels: append = the caller's AppendAsync loop, wal = the WAL's "+
			"writer goroutine, archiver and decoder = the stage runners and what they call; unlabelled = mostly the garbage collector) and by function.",
			formatNum(res.total, 0), res.elapsed.Round(time.Millisecond)))
		s.Extra = profileSummary(prof)
		if busy := stageBusy(s.Extra, res.elapsed); busy != "" {
			s.Notes = append(s.Notes, busy)
		}
	}
	return s, errs
}

// inprocessRun appends c to a fresh WAL while both stages run, and with check reads the lake back
// afterwards. With profile set, the run is CPU-profiled into that file.
func inprocessRun(ctx context.Context, e *env, c *corpus, profile string, check bool) (inprocessResult, error) {
	dir, err := e.dir("inprocess")
	if err != nil {
		return inprocessResult{}, err
	}
	defer os.RemoveAll(dir)
	runtime.GC()
	reg := prometheus.NewRegistry()
	wcfg := wal.DefaultConfig()
	wcfg.Dir = filepath.Join(dir, "wal")
	var w *wal.WAL
	pprof.Do(ctx, pprof.Labels("stage", "wal"), func(context.Context) { w, err = wal.Open(wcfg, nil, reg) })
	if err != nil {
		return inprocessResult{}, err
	}
	walOpen := true
	defer func() {
		if walOpen {
			w.Close()
		}
	}()
	lakeDir := filepath.Join(dir, "lake")
	lk, err := lake.Open(ctx, "file://"+filepath.ToSlash(lakeDir))
	if err != nil {
		return inprocessResult{}, err
	}
	defer lk.Close()
	st, err := startStages(ctx, w, lk, lake.DefaultConfig(), c.reg, reg)
	if err != nil {
		return inprocessResult{}, err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			st.drain()
			return inprocessResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			st.drain()
			return inprocessResult{}, err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0, t0 := harness.SelfCPU(), time.Now()
	var appendErr error
	pprof.Do(ctx, pprof.Labels("stage", "append"), func(ctx context.Context) { appendErr = appendAll(ctx, w, c, 1024, 16) })
	tAppended := time.Now()
	done, doneErr := stageRecords(reg)
	drainErr := st.drain()
	tEnd, cpu := time.Now(), harness.SelfCPU()-cpu0
	if profile != "" {
		pprof.StopCPUProfile()
	}
	if appendErr != nil || drainErr != nil || doneErr != nil {
		return inprocessResult{}, fmt.Errorf("append: %v; stages: %v; stage metrics: %v", appendErr, drainErr, doneErr)
	}
	walOpen = false
	if err := w.Close(); err != nil {
		return inprocessResult{}, err
	}
	n := float64(c.len())
	res := inprocessResult{total: n / tEnd.Sub(t0).Seconds(), appended: n / tAppended.Sub(t0).Seconds(), elapsed: tEnd.Sub(t0), cpu: cpu}
	for i, name := range stageNames {
		res.behind[i] = int64(c.len()) - done[name]
		res.tail[i] = st.done[i].Sub(tAppended)
	}
	if !check {
		return res, nil
	}
	chk, err := lakecheck.Open(lakeDir)
	if err != nil {
		return res, err
	}
	defer chk.Close()
	rd, err := chk.Readings(ctx)
	if err != nil {
		return res, err
	}
	raw, err := chk.Count(ctx, "raw")
	if err != nil {
		return res, err
	}
	res.readings, res.raw = rd.Distinct, raw
	if rd.Rows != int64(c.len()) || rd.Distinct != int64(c.len()) || raw != int64(c.len()) {
		return res, fmt.Errorf("lake holds %d readings (%d distinct) and %d raw rows, want %d of each", rd.Rows, rd.Distinct, raw, c.len())
	}
	return res, nil
}

// stageRecords reads sluice_stage_records_total of each stage from g: the log records it has
// processed.
func stageRecords(g prometheus.Gatherer) (map[string]int64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	n := map[string]int64{}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_stage_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					n[l.GetValue()] = int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	for _, name := range stageNames {
		if _, ok := n[name]; !ok {
			return nil, fmt.Errorf("no sluice_stage_records_total for stage %s", name)
		}
	}
	return n, nil
}

// profileSummary returns the stage split (pprof -tags) and the top functions (pprof -top) of a CPU
// profile, or why it could not.
func profileSummary(prof string) string {
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof"}, append(args, prof)...)...).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("go tool pprof %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	tags := run("-tags")
	top := run("-top", "-nodecount=30")
	// Keep the stage split and the table; drop pprof's preamble lines about the file and build id.
	var keep []string
	for _, l := range strings.Split(tags, "\n") {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	keep = append(keep, "")
	for _, l := range strings.Split(top, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// stageBusy reads the stage split of a profile summary (pprof -tags lines such as
// "3.01s (63.24%): decoder") and says how much of one core each stage kept busy over the run: a
// stage's label covers its runner's goroutine and those it starts (the decoder's decode pool, the
// commits, a file's row-group encoders), so a share can pass 100%.
func stageBusy(summary string, elapsed time.Duration) string {
	var parts []string
	for _, m := range tagLine.FindAllStringSubmatch(summary, -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil || elapsed <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", m[2], 100*d.Seconds()/elapsed.Seconds()))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Each stage's CPU time as a share of one core over the run's wall time: " + strings.Join(parts, ", ") +
		fmt.Sprintf(". A stage's share covers its runner's goroutine and the goroutines it starts (the decoder's decode pool, "+
			"its commits, the row-group encoders of a file), so it can pass 100%%; all %d processors are %d%%.",
			runtime.GOMAXPROCS(0), 100*runtime.GOMAXPROCS(0))
}

// tagLine is one line of `go tool pprof -tags`: "  240ms ( 5.04%): wal".
var tagLine = regexp.MustCompile(`(?m)^\s*([0-9.]+[a-zµ]*s)\s+\(\s*[0-9.]+%\):\s+(\S+)\s*$`)
