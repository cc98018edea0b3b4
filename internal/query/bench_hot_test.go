package query

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/testkit"
)

// BenchmarkHotFlush appends hot readings (10,000 sensors, one in 100 with a flag) to the SQL engine's
// hot table in batches and reports the cost a row: the decoder's hot handoff. batch=512 is what one
// flush held at ~50,000 readings/s with query.hot_flush_interval 10ms (the default until 250ms, where
// one holds ~12,500). 2026-12-03, 2-core 2.3GHz Xeon: 4,177 and 830 ns/row.
//
// busy=true runs a busy loop per CPU beside the flushes, at normal priority, as ingest keeps a
// machine busy; caller-cpu-ns/row is the CPU time of the thread that flushes. With DuckDB's worker
// threads at nice=19 they get almost no CPU then, and a statement whose tasks they took keeps its
// caller polling until they finish. 2026-12-04, 2-core AMD EPYC, 12,500-row flushes, caller CPU a
// row at nice 19: 526-545 ns idle, 480-1,893 busy (eight runs; wall 1,318-3,188 ns/row), most of it
// the CHECKPOINT every 122,880 rows (with it disabled: 299 idle, 397 busy); at nice 0 (the
// default since), 331-428 busy (wall 846-1,063). An appender instead of the INSERT measured the same
// at 19 (758-1,501 busy, three runs alternated with the INSERT's 480-1,207), so it was not taken.
func BenchmarkHotFlush(b *testing.B) {
	for _, c := range []struct {
		batch int
		busy  bool
		nice  int
	}{{512, false, 0}, {16384, false, 0}, {12500, false, 0}, {12500, true, 0}, {12500, true, 19}} {
		b.Run(fmt.Sprintf("batch=%d/busy=%v/nice=%d", c.batch, c.busy, c.nice), func(b *testing.B) {
			if c.busy {
				stop := busyLoops(runtime.NumCPU())
				defer stop()
			}
			benchHotFlush(b, c.batch, c.nice)
		})
	}
}

// busyLoops keeps n OS threads spinning at normal priority until stop is called (GOMAXPROCS is raised
// by n meanwhile, so the benchmark keeps its own).
func busyLoops(n int) (stop func()) {
	prev := runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + n)
	var done atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			for !done.Load() {
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
		runtime.GOMAXPROCS(prev)
	}
}

func benchHotFlush(b *testing.B, batch, nice int) {
	_, u := testkit.TempLake(b)
	cfg := testConfig()
	cfg.Nice = nice
	e := openEngine(b, u, cfg, WithHotReadings(func(p int32) string { return fmt.Sprintf("decoder-p%d", p) }))
	h := e.hot
	file := make([]lake.ReadingRow, batch)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := range file {
		file[i] = lake.ReadingRow{SensorID: fmt.Sprintf("plant-a-sensor-%05d", i%10_000), Metric: "temperature", TS: t0 + int64(i)*1000,
			Value: float64(i) / 7, Unit: "C", ReceivedAt: t0 + int64(i)*1000 + 5, IngestID: int64(i)}
		if i%100 == 0 {
			file[i].Flags = []string{"out_of_range"}
		}
	}
	rows := lake.ReadingsOf(file)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU(b)
	b.ResetTimer()
	for range b.N {
		h.add(0, rows)
		h.writeMu.Lock()
		if err := h.flushLocked(); err != nil {
			b.Fatal(err)
		}
		h.writeMu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
	if cpu0 >= 0 {
		b.ReportMetric(float64((threadCPU(b)-cpu0).Nanoseconds())/float64(b.N*batch), "caller-cpu-ns/row")
	}
}
