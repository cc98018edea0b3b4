package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/lake"
	slog2 "github.com/sluice-project/sluice/internal/log"
)

// poolRecords returns n records on two partitions: messages of 40 sensors (some of two values, in
// field order), exact repeats of earlier messages, undecodable payloads and corrupt envelopes, in a
// seeded random mix. want is what the decoder must buffer for readings/, in order: every reading of
// every decodable record, in record order, except keys seen before; wantQ is the quarantined
// offsets, in order.
func poolRecords(n int) (recs []slog2.Record, want []lake.ReadingRow, wantQ []int64) {
	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	type sent struct {
		payload string
		rows    []lake.ReadingRow
	}
	var earlier []sent
	seen := map[[3]any]bool{}
	for k := range n {
		part := int32(k % 2)
		off := int64(k / 2)
		recv := base.Add(time.Duration(k) * time.Millisecond)
		var payload string
		var rows []lake.ReadingRow
		switch x := rng.IntN(100); {
		case x < 3:
			recs = append(recs, slog2.Record{Partition: part, Offset: off, Value: []byte{0xff, byte(k)}})
			wantQ = append(wantQ, off)
			continue
		case x < 6:
			payload = fmt.Sprintf(`{"sensor_id":"s%d","value":`, k)
			wantQ = append(wantQ, off)
		case x < 12 && len(earlier) > 0:
			e := earlier[rng.IntN(len(earlier))]
			payload, rows = e.payload, e.rows
		case x < 20:
			s := rng.IntN(40)
			us := recv.UnixMicro() - int64(rng.IntN(5000))
			payload = fmt.Sprintf(`{"sensor_id":"s%d","ts":%d,"temperature":%d.5,"humidity":%d}`, s, us, k, k%100)
			rows = []lake.ReadingRow{
				{SensorID: fmt.Sprintf("s%d", s), Metric: "temperature", TS: us, Value: float64(k) + 0.5},
				{SensorID: fmt.Sprintf("s%d", s), Metric: "humidity", TS: us, Value: float64(k % 100)},
			}
		default:
			s := rng.IntN(40)
			us := recv.UnixMicro() - int64(rng.IntN(5000))
			payload = fmt.Sprintf(`{"sensor_id":"s%d","timestamp":"%s","value":%d,"metadata":{"unit":"C","type":"temperature"}}`,
				s, time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000"), k)
			rows = []lake.ReadingRow{{SensorID: fmt.Sprintf("s%d", s), Metric: "temperature", TS: us, Value: float64(k), Unit: "C"}}
		}
		if rows != nil {
			earlier = append(earlier, sent{payload, rows})
		}
		for _, r := range rows {
			key := [3]any{r.SensorID, r.Metric, r.TS}
			if seen[key] {
				continue
			}
			seen[key] = true
			r.ReceivedAt, r.IngestID, r.Flags = recv.UnixMicro(), off, decode.FlagUnknownSensor.Names()
			want = append(want, r)
		}
		e := envelope.Envelope{ReceivedAt: recv.UnixNano(), Source: envelope.SourceMQTT, QoS: 1, Topic: "sensors", Payload: []byte(payload)}
		recs = append(recs, slog2.Record{Partition: part, Offset: off, Value: e.AppendBinary(nil)})
	}
	return recs, want, wantQ
}

// TestDecoderPoolKeepsOrder decodes records on 1 to 4 goroutines, in batches of several sizes (one
// chunk, many, a partial last one), and checks that what the decoder buffers is exactly the
// expected readings in record order: none lost, none twice, none moved, duplicates removed.
func TestDecoderPoolKeepsOrder(t *testing.T) {
	recs, want, wantQ := poolRecords(5000)
	for _, workers := range []int{1, 2, 4} {
		for _, batch := range []int{1, 100, decodeChunkRecords, 4096, len(recs)} {
			t.Run(fmt.Sprintf("workers=%d/batch=%d", workers, batch), func(t *testing.T) {
				ctx := context.Background()
				lk, err := lake.Open(ctx, fmt.Sprintf("mem://pool-%d", time.Now().UnixNano()))
				if err != nil {
					t.Fatal(err)
				}
				defer lk.Close()
				dcfg := decode.DefaultConfig()
				dcfg.MaxFuture = 100 * 365 * 24 * time.Hour
				d, err := NewDecoder(ctx, lk, lake.DefaultConfig(), dcfg, nil, DefaultDedupConfig(), nil)
				if err != nil {
					t.Fatal(err)
				}
				d.pool.decs = d.pool.decs[:1]
				for len(d.pool.decs) < workers {
					dec, err := decode.New(dcfg, nil)
					if err != nil {
						t.Fatal(err)
					}
					d.pool.decs = append(d.pool.decs, dec)
				}
				for _, p := range []int32{0, 1} {
					if _, err := d.Resume(ctx, p); err != nil {
						t.Fatal(err)
					}
				}
				for i := 0; i < len(recs); i += batch {
					if err := d.Process(ctx, recs[i:min(i+batch, len(recs))]); err != nil {
						t.Fatal(err)
					}
				}
				got := d.readings.Seal().Rows()
				if len(got) != len(want) {
					t.Fatalf("%d readings buffered, want %d", len(got), len(want))
				}
				for i := range want {
					if g, w := got[i].Row(), want[i]; g.SensorID != w.SensorID || g.Metric != w.Metric || g.TS != w.TS || g.Value != w.Value ||
						g.Unit != w.Unit || g.ReceivedAt != w.ReceivedAt || g.IngestID != w.IngestID || !slices.Equal(g.Flags, w.Flags) {
						t.Fatalf("reading %d is %+v, want %+v", i, g, w)
					}
				}
				var gotQ []int64
				for _, q := range d.quarantine.Seal().Rows() {
					gotQ = append(gotQ, q.IngestID)
				}
				if !slices.Equal(gotQ, wantQ) {
					t.Fatalf("quarantined offsets %v, want %v", gotQ, wantQ)
				}
			})
		}
	}
}
