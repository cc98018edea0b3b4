package query

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/testkit"
)

// BenchmarkHotFlush appends hot readings (10,000 sensors, one in 100 with a flag) to the SQL engine's
// hot table in batches and reports the cost a row: the decoder's hot handoff. batch=512 is what one
// flush held at ~50,000 readings/s with query.hot_flush_interval 10ms (the default until 250ms, where
// one holds ~12,500). 2026-12-03, 2-core 2.3GHz Xeon: 4,177 and 830 ns/row.
func BenchmarkHotFlush(b *testing.B) {
	for _, batch := range []int{512, 16384} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchHotFlush(b, batch) })
	}
}

func benchHotFlush(b *testing.B, batch int) {
	_, u := testkit.TempLake(b)
	e := openEngine(b, u, testConfig(), WithHotReadings(func(p int32) string { return fmt.Sprintf("decoder-p%d", p) }))
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
}
