package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/lake"
	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/simulate"
)

// benchRecords returns n log records of the simulator's default (nested) shape for a fleet publishing
// once a second each, in batches of the WAL's largest fetch, and the fleet's registry.
func benchRecords(b *testing.B, n, fleet int) ([][]slog2.Record, *sensor.Registry) {
	b.Helper()
	cfg := simulate.DefaultConfig()
	cfg.Fleet = fleet
	reg, err := simulate.Sensors(cfg)
	if err != nil {
		b.Fatal(err)
	}
	gen, err := simulate.NewGenerator(cfg, reg)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	slot := time.Second / time.Duration(fleet)
	var batches [][]slog2.Record
	var batch []slog2.Record
	for k := range n {
		now := start.Add(time.Duration(k/fleet)*time.Second + time.Duration(k%fleet)*slot)
		m := gen.Next(nil, now)
		e := envelope.Envelope{ReceivedAt: now.Add(time.Millisecond).UnixNano(), Source: envelope.SourceMQTT, QoS: 1, Topic: m.Topic, Payload: m.Payload}
		batch = append(batch, slog2.Record{Offset: int64(k), Value: e.AppendBinary(nil)})
		if len(batch) == 4096 {
			batches = append(batches, batch)
			batch = nil
		}
	}
	return batches, reg
}

// BenchmarkDecoderProcess is the decoder stage's goroutine alone: Process over batches of 4,096
// records of the nested shape from 10,000 sensors (decode, deduplicate, buffer for readings/), with
// one decoding goroutine and with two. The sealed rows are dropped, not committed. Run with a fixed
// count (-benchtime=400x at most: 1.6M records, each once) so no record is a duplicate.
func BenchmarkDecoderProcess(b *testing.B) {
	const n, fleet = 1_640_000, 10_000
	batches, reg := benchRecords(b, n, fleet)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			ctx := context.Background()
			lk, err := lake.Open(ctx, fmt.Sprintf("mem://bench-%d", time.Now().UnixNano()))
			if err != nil {
				b.Fatal(err)
			}
			defer lk.Close()
			d, err := NewDecoder(ctx, lk, lake.DefaultConfig(), decode.DefaultConfig(), reg, DefaultDedupConfig(), nil)
			if err != nil {
				b.Fatal(err)
			}
			d.pool.decs = d.pool.decs[:1]
			for len(d.pool.decs) < workers {
				dec, err := decode.New(decode.DefaultConfig(), reg)
				if err != nil {
					b.Fatal(err)
				}
				d.pool.decs = append(d.pool.decs, dec)
			}
			if _, err := d.Resume(ctx, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(batches) {
					b.Fatalf("out of records: use -benchtime=%dx at most", len(batches))
				}
				if err := d.Process(ctx, batches[i]); err != nil {
					b.Fatal(err)
				}
				if rows, _, _ := d.readings.Buffered(); rows >= 1_000_000 {
					d.Seal(0, int64(i))
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*4096), "ns/reading")
		})
	}
}

// BenchmarkDecoderSensorMemory is the memory the decoder stage keeps per sensor, its buffered rows
// aside: it decodes three readings from every sensor of the fleet (nested shape, one decoding
// goroutine per processor), seals (dropping the rows), and reports the live heap it holds after a
// collection, per sensor (the registry, shared with the rest of sluice, is not counted). What remains
// is the deduplication window of three keys a series, the series and the id tables.
func BenchmarkDecoderSensorMemory(b *testing.B) {
	for _, fleet := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("sensors=%d", fleet), func(b *testing.B) {
			batches, reg := benchRecords(b, 3*fleet, fleet)
			ctx := context.Background()
			var perSensor float64
			for b.Loop() {
				lk, err := lake.Open(ctx, fmt.Sprintf("mem://bench-%d", time.Now().UnixNano()))
				if err != nil {
					b.Fatal(err)
				}
				before := liveHeap()
				d, err := NewDecoder(ctx, lk, lake.DefaultConfig(), decode.DefaultConfig(), reg, DefaultDedupConfig(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Resume(ctx, 0); err != nil {
					b.Fatal(err)
				}
				for i, batch := range batches {
					if err := d.Process(ctx, batch); err != nil {
						b.Fatal(err)
					}
					if i == len(batches)-1 {
						d.Seal(0, batch[len(batch)-1].Offset)
					}
				}
				perSensor = float64(liveHeap()-before) / float64(fleet)
				runtime.KeepAlive(d)
				lk.Close()
			}
			b.ReportMetric(perSensor, "live-B/sensor")
		})
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
