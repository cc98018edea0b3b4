package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/bench/internal/lakecheck"
	"github.com/sluice-project/sluice/internal/app"
	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/simulate"
)

// memoryPlan sizes the memory measurement.
type memoryPlan struct {
	fleets   []int
	duration time.Duration // publishing time per run
	conns    int
	runs     int
	settings []string // extra SLUICE_* settings (and GO* variables) for every run
}

// memoryResult is one run.
type memoryResult struct {
	peak      int64 // VmHWM sampled while ingesting, bytes
	atExit    int64 // VmHWM sampled until the process exited after SIGTERM (shutdown's final commits included), bytes
	ready     int64 // VmRSS once ready, before the first message, bytes
	published int64
	rate      float64
	inLake    int64 // distinct readings committed
	split     memorySplit
}

// memorySplit is what the RSS held at the highest sample (VmRSS, read once a second with /metrics):
// the Go runtime's heap and stacks as it reports them, the file pages (RssFile: the binary's code
// and data), and the rest (anonymous memory outside Go's heap: DuckDB, C). maxLive is the highest
// live heap of all samples (go_gc_heap_live_bytes: what the last collection found live), which the
// heap in use exceeds by what GOGC and runtime.memory_limit allow.
type memorySplit struct {
	rss, goHeld, file int64
	maxLive           int64
}

// other is the RSS that is neither Go's nor file pages.
func (m memorySplit) other() int64 { return m.rss - m.goHeld - m.file }

// sample records p's live heap, and its RSS and parts when the RSS is the highest seen.
func (m *memorySplit) sample(ctx context.Context, p *harness.Proc) {
	parts, err := harness.ReadRSSParts(p.Pid)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	mt, err := p.Metrics(ctx)
	if err != nil {
		return
	}
	m.maxLive = max(m.maxLive, int64(mt.Get("go_gc_heap_live_bytes")))
	if parts.RSS <= m.rss {
		return
	}
	held := mt.Get("go_memstats_heap_sys_bytes") - mt.Get("go_memstats_heap_released_bytes") + mt.Get("go_memstats_stack_sys_bytes")
	if held > 0 {
		m.rss, m.goHeld, m.file = parts.RSS, int64(held), parts.File
	}
}

// measureMemory measures sluice's peak RSS with each fleet size.
func measureMemory(ctx context.Context, e *env, plan memoryPlan) (*Section, []string) {
	s := &Section{Title: "Memory: peak RSS of the sluice binary"}
	s.Intro = fmt.Sprintf("`sluice run` with its embedded broker and the default configuration, a sensors.json registry of the fleet "+
		"(SLUICE_SENSORS_FILE), and the simulator publishing at QoS 1 as fast as sluice acknowledges, from %d connections, for %s per run. "+
		"Peak RSS is VmHWM from /proc/<pid>/status, read while ingesting, and (\"with shutdown\") until the process has exited after SIGTERM, "+
		"which includes its final commits. Once a second the run also reads VmRSS and /metrics; at the highest of those samples it splits "+
		"the RSS into what the Go runtime holds (go_memstats heap_sys - heap_released + stack_sys; runtime.memory_limit bounds it), file pages "+
		"(RssFile: the binary's code and data, DuckDB's included, which the kernel may drop and read again) and the rest (anonymous memory outside "+
		"Go's heap: DuckDB's tables and buffers, C). The live Go heap is what the last collection found live: what sluice needs of the Go side, which the heap in use exceeds by what GOGC and runtime.memory_limit let it grow. \"Once ready\" is VmRSS after start-up, before the first message.", plan.conns, plan.duration)
	var errs []string
	for _, fleet := range plan.fleets {
		name := formatNum(float64(fleet), 0) + " sensors"
		peak := s.Add("peak RSS while ingesting, "+name, "MiB", 1)
		if fleet >= 100_000 {
			peak.Goal(256, false)
		}
		exit := s.Add("peak RSS with shutdown, "+name, "MiB", 1)
		ready := s.Add("RSS once ready, "+name, "MiB", 1)
		goHeld := s.Add("at the highest RSS sample: Go heap and stacks, "+name, "MiB", 1)
		file := s.Add("at the highest RSS sample: file pages (the binary), "+name, "MiB", 1)
		rest := s.Add("at the highest RSS sample: the rest (DuckDB, C), "+name, "MiB", 1)
		live := s.Add("highest live Go heap (go_gc_heap_live_bytes, once a second), "+name, "MiB", 1)
		rate := s.Add("ingest rate (publisher, acknowledged by sluice), "+name, "msg/s", 0)
		lost := s.Add("messages acknowledged but not in readings/, "+name, "messages", 0).MustBe(0, false)
		for r := range plan.runs {
			res, err := memoryRun(ctx, e, fleet, plan, int64(r+1))
			if err != nil {
				errs = append(errs, fmt.Sprintf("memory %s run %d: %v", name, r+1, err))
				continue
			}
			e.say("memory %s run %d/%d: peak %.1f MiB (at exit %.1f MiB), %d published at %.0f msg/s, %d in the lake",
				name, r+1, plan.runs, mib(res.peak), mib(res.atExit), res.published, res.rate, res.inLake)
			peak.Values = append(peak.Values, mib(res.peak))
			exit.Values = append(exit.Values, mib(res.atExit))
			if res.ready > 0 {
				ready.Values = append(ready.Values, mib(res.ready))
			}
			if res.split.rss > 0 {
				goHeld.Values = append(goHeld.Values, mib(res.split.goHeld))
				file.Values = append(file.Values, mib(res.split.file))
				rest.Values = append(rest.Values, mib(res.split.other()))
			}
			if res.split.maxLive > 0 {
				live.Values = append(live.Values, mib(res.split.maxLive))
			}
			rate.Values = append(rate.Values, res.rate)
			lost.Values = append(lost.Values, float64(max(0, res.published-res.inLake)))
		}
	}
	s.Notes = append(s.Notes, "What grows with the rate rather than the fleet: rows buffered per stage until a commit (flush_interval 1m, "+
		"flush_rows 1M, flush_bytes 128MiB), messages waiting for the WAL (broker.receive_maximum per connection) and the deduplication "+
		"window (dedup.window 2m, at most dedup.max_keys 4M keys); a run shorter than the window does not fill it. The Go side stays near "+
		fmt.Sprintf("runtime.memory_limit (%s) once what is live approaches it; the SQL engine's hot rows (readings not yet committed, compressed by DuckDB) are on the other side.", app.DefaultConfig().Runtime.MemoryLimit))
	return s, errs
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// memoryRun starts sluice with a registry of fleet sensors and publishes to it for plan.duration.
func memoryRun(ctx context.Context, e *env, fleet int, plan memoryPlan, seed int64) (memoryResult, error) {
	dir, err := e.dir(fmt.Sprintf("memory-%d", fleet))
	if err != nil {
		return memoryResult{}, err
	}
	cfg := simulate.DefaultConfig()
	cfg.Fleet, cfg.Seed = fleet, seed
	reg, err := simulate.Sensors(cfg)
	if err != nil {
		return memoryResult{}, err
	}
	list, err := sensor.MarshalList(reg)
	if err != nil {
		return memoryResult{}, err
	}
	sensorsFile := filepath.Join(dir, "sensors.json")
	if err := os.WriteFile(sensorsFile, list, 0o644); err != nil {
		return memoryResult{}, err
	}
	p, lakeDir, err := e.startSluice(fmt.Sprintf("memory-%d-sluice", fleet), append([]string{"SLUICE_SENSORS_FILE=" + sensorsFile}, plan.settings...))
	if err != nil {
		return memoryResult{}, err
	}
	defer p.Kill()
	ready, _ := harness.RSS(p.Pid) // 0 when unreadable: the figure is left out
	var peak atomic.Int64
	read := func() {
		if v, err := p.PeakRSS(); err == nil {
			peak.Store(max(peak.Load(), v))
		}
	}
	stop := harness.Ticker(250*time.Millisecond, read)
	var split memorySplit
	stopSplit := harness.Ticker(time.Second, func() { split.sample(ctx, p) })
	pc := publisher("mqtt://"+p.MQTT, 1, plan.conns, fleet, 0, seed)
	pc.Topic = "" // the shape's own topic, as a fleet would publish
	pc.Duration = plan.duration
	stats, err := simulate.Run(ctx, pc, nil)
	read()
	stop()
	stopSplit()
	if err != nil {
		return memoryResult{}, fmt.Errorf("publisher: %w", err)
	}
	ingesting := peak.Load()
	// Shutdown commits what the stages buffered: keep reading VmHWM until the process is gone. (Not
	// getrusage's ru_maxrss: Go starts children with vfork, and exec records the parent's peak RSS
	// as the child's, so ru_maxrss would report this process's own peak.)
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(2 * time.Minute) }()
	var stopErr error
	for waiting := true; waiting; {
		select {
		case stopErr = <-stopped:
			waiting = false
		case <-time.After(20 * time.Millisecond):
			read()
		}
	}
	if stopErr != nil {
		return memoryResult{}, stopErr
	}
	res := memoryResult{peak: ingesting, atExit: peak.Load(), ready: ready, published: stats.Published, rate: stats.Rate(), split: split}
	chk, err := lakecheck.Open(lakeDir)
	if err != nil {
		return res, err
	}
	defer chk.Close()
	rd, err := chk.Readings(ctx)
	if err != nil {
		return res, err
	}
	if rd.Duplicates() != 0 {
		return res, fmt.Errorf("readings/ holds %d duplicates", rd.Duplicates())
	}
	res.inLake = rd.Distinct
	if stats.Unacked == 0 && rd.Distinct > stats.Published {
		return res, fmt.Errorf("readings/ holds %d distinct readings, more than the %d messages sent", rd.Distinct, stats.Published)
	}
	return res, nil
}
