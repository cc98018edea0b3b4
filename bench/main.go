package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/internal/testkit"
)

func main() {
	harness.MaybeServeMochi()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// measurements names what -only may select, in the order they run.
var measurements = []string{"broker", "inprocess", "storage", "memory", "freshness"}

// plan is the size of every measurement.
type plan struct {
	broker    brokerPlan
	inprocess inprocessPlan
	storage   storagePlan
	memory    memoryPlan
	freshness freshnessPlan
}

// fullPlan is `go run ./bench`: a few minutes.
func fullPlan(runs int, kinds []string) plan {
	return plan{
		broker:    brokerPlan{kinds: kinds, n: [2]int64{300_000, 150_000}, runs: runs, conns: 4, fleet: 10_000},
		inprocess: inprocessPlan{n: 2_000_000, fleet: 10_000, runs: runs, warmup: true, profile: true},
		storage:   storagePlan{cases: []storageCase{{100, 20}, {1000, 10}, {10_000, 3}}, runs: runs},
		memory:    memoryPlan{fleets: []int{10_000, 100_000}, duration: 40 * time.Second, conns: 32, runs: min(runs, 2)},
		freshness: freshnessPlan{fleet: 200, duration: 10 * time.Second, warmup: 3 * time.Second, poll: 20 * time.Millisecond, runs: runs},
	}
}

// quickPlan is `go run ./bench -quick` and the test: seconds.
func quickPlan(runs int, kinds []string) plan {
	return plan{
		broker:    brokerPlan{kinds: kinds, n: [2]int64{20_000, 10_000}, runs: runs, conns: 4, fleet: 1000},
		inprocess: inprocessPlan{n: 100_000, fleet: 1000, runs: runs},
		storage:   storagePlan{cases: []storageCase{{100, 2}}, runs: runs},
		memory:    memoryPlan{fleets: []int{1000}, duration: 3 * time.Second, conns: 4, runs: runs},
		freshness: freshnessPlan{fleet: 100, duration: 4 * time.Second, warmup: time.Second, poll: 20 * time.Millisecond, runs: runs},
	}
}

// run is the command: it returns the exit code (0, or 1 when a measurement failed or a correctness
// figure missed its target, 2 for bad flags).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "small sizes, one run: seconds instead of minutes (what go test runs)")
	runs := fs.Int("runs", 0, "runs of each measurement (default 3, or 1 with -quick)")
	only := fs.String("only", strings.Join(measurements, ","), "measurements to take: "+strings.Join(measurements, ","))
	brokers := fs.String("brokers", "auto", "brokers to measure: mosquitto, embedded, or auto (both when Mosquitto is installed, else embedded)")
	out := fs.String("out", "", "write the results here (default bench/RESULTS.md for a full run, nothing with -quick)")
	keep := fs.Bool("keep", false, "keep the scratch directory (data dirs, logs, the CPU profile)")
	memSettings := fs.String("memory-settings", "", "comma-separated NAME=value settings for sluice in the memory runs, e.g. SLUICE_LAKE_FLUSH_BYTES=32MiB,GOMEMLIMIT=200MiB")
	memFleets := fs.String("memory-fleets", "", "comma-separated fleet sizes for the memory runs (default 10000,100000)")
	memDuration := fs.Duration("memory-duration", 0, "publishing time of each memory run (default 40s; the deduplication window fills in 2m)")
	memRuns := fs.Int("memory-runs", 0, "runs of each memory measurement (default: -runs, at most 2)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	selected := strings.Split(*only, ",")
	for _, m := range selected {
		if !slices.Contains(measurements, m) {
			fmt.Fprintf(stderr, "bench: -only: unknown measurement %q (use %s)\n", m, strings.Join(measurements, ","))
			return 2
		}
	}
	kinds, err := brokerKinds(*brokers)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if *runs <= 0 {
		*runs = 3
		if *quick {
			*runs = 1
		}
	}
	p := fullPlan(*runs, kinds)
	if *quick {
		p = quickPlan(*runs, kinds)
	}
	if *memDuration > 0 {
		p.memory.duration = *memDuration
	}
	if *memRuns > 0 {
		p.memory.runs = *memRuns
	}
	if *memSettings != "" {
		p.memory.settings = strings.Split(*memSettings, ",")
	}
	if *memFleets != "" {
		p.memory.fleets = nil
		for _, f := range strings.Split(*memFleets, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				fmt.Fprintf(stderr, "bench: -memory-fleets: %q is not a fleet size\n", f)
				return 2
			}
			p.memory.fleets = append(p.memory.fleets, n)
		}
	}
	ws, err := harness.NewWorkspace("bench", *keep, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	defer ws.Close()
	if *out == "" && !*quick {
		*out = filepath.Join(ws.Root, "bench", "RESULTS.md")
	}
	e := &env{root: ws.Root, work: ws.Work, quick: *quick, say: harness.Say(stderr)}
	cmdline := "go run ./bench"
	if len(args) > 0 {
		cmdline += " " + strings.Join(args, " ")
	}
	rep := &Report{Started: time.Now(), Command: cmdline, Machine: machine(ws.Root)}
	e.say("building sluice")
	if err := ws.Build(ctx); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	e.bin = ws.Bin
	for _, m := range selected {
		if ctx.Err() != nil {
			rep.Errors = append(rep.Errors, m+": interrupted")
			continue
		}
		switch m {
		case "broker":
			secs, errs := measureBroker(ctx, e, p.broker)
			rep.Sections = append(rep.Sections, secs...)
			rep.Errors = append(rep.Errors, errs...)
		case "inprocess":
			sec, errs := measureInprocess(ctx, e, p.inprocess)
			rep.Sections = append(rep.Sections, sec)
			rep.Errors = append(rep.Errors, errs...)
		case "storage":
			sec, errs := measureStorage(ctx, e, p.storage)
			rep.Sections = append(rep.Sections, sec)
			rep.Errors = append(rep.Errors, errs...)
		case "memory":
			sec, errs := measureMemory(ctx, e, p.memory)
			rep.Sections = append(rep.Sections, sec)
			rep.Errors = append(rep.Errors, errs...)
		case "freshness":
			sec, errs := measureFreshness(ctx, e, p.freshness)
			rep.Sections = append(rep.Sections, sec)
			rep.Errors = append(rep.Errors, errs...)
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	if l := loadavg(); l != "" {
		rep.Machine = append(rep.Machine, "Load average at the end: "+l)
	}
	fmt.Fprint(stdout, rep.Text())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(rep.Markdown()), 0o644); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		fmt.Fprintln(stdout, "results written to", *out)
	}
	if rep.Broken() {
		return 1
	}
	return 0
}

// brokerKinds resolves -brokers.
func brokerKinds(s string) ([]string, error) {
	if s == "auto" {
		if testkit.MosquittoPath() != "" {
			return []string{"mosquitto", "embedded"}, nil
		}
		return []string{"embedded"}, nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		switch k {
		case "mosquitto":
			if testkit.MosquittoPath() == "" {
				return nil, fmt.Errorf("-brokers: mosquitto is not installed")
			}
			out = append(out, k)
		case "embedded":
			out = append(out, k)
		default:
			return nil, fmt.Errorf("-brokers: unknown broker %q (use mosquitto, embedded or auto)", k)
		}
	}
	return out, nil
}
