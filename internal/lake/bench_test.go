package lake

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// walk generates what the simulator sends by default: sensors publishing once a second, values a
// random walk with two decimals, timestamps with microseconds, received a few milliseconds later.
type walk struct {
	rng     *rand.Rand
	sensors int
	ids     []string
	values  []float64
	ts      int64 // start of the current second, µs
	next    int   // next sensor in this second
	ingest  int64
}

func newWalk(sensors int, start time.Time) *walk {
	w := &walk{rng: rand.New(rand.NewPCG(1, 2)), sensors: sensors, ts: start.UnixMicro()}
	for i := range sensors {
		w.ids = append(w.ids, strconv.Itoa(i+1))
		w.values = append(w.values, 15+float64(w.rng.IntN(1500))/100)
	}
	return w
}

// step returns the next reading in arrival order, and its JSON payload of the default shape.
func (w *walk) step(payload []byte) (ReadingRow, []byte) {
	if w.next == w.sensors {
		w.next, w.ts = 0, w.ts+1_000_000
	}
	s := w.next
	w.next++
	v := w.values[s] + float64(w.rng.IntN(21)-10)/100
	v = math.Round(v*100) / 100
	w.values[s] = v
	ts := w.ts + int64(s)*(1_000_000/int64(w.sensors)) + int64(w.rng.IntN(1000))
	recv := ts + 1000 + int64(w.rng.IntN(4000))
	w.ingest++
	r := ReadingRow{SensorID: w.ids[s], Metric: "temperature", TS: ts, Value: v, Unit: "C", ReceivedAt: recv, IngestID: w.ingest, Flags: []string{}}
	payload = fmt.Appendf(payload[:0], `{"sensor_id":%q,"timestamp":%q,"value":%s,"metadata":{"lat":%d,"lng":10,"unit":"C","type":"temperature","description":"Main Entrance"}}`,
		w.ids[s], time.UnixMicro(ts).UTC().Format("2006-01-02T15:04:05.000000"), strconv.FormatFloat(v, 'f', -1, 64), s%90)
	return r, payload
}

func genReadings(n, sensors int, start time.Time) []ReadingRow {
	w := newWalk(sensors, start)
	rows := make([]ReadingRow, n)
	var p []byte
	for i := range rows {
		rows[i], p = w.step(p)
	}
	return rows
}

func genRaw(n, sensors int, start time.Time) []RawRow {
	w := newWalk(sensors, start)
	rows := make([]RawRow, n)
	var p []byte
	for i := range rows {
		var r ReadingRow
		r, p = w.step(p)
		rows[i] = RawRow{IngestID: r.IngestID, ReceivedAt: r.ReceivedAt, Source: "mqtt", Topic: "sensors", QoS: 1, Payload: append([]byte(nil), p...)}
	}
	return rows
}

// benchStart puts 1M readings of 1,000 sensors (1,000 s) across midnight: two date partitions.
var benchStart = time.Date(2026, 11, 22, 23, 52, 0, 0, time.UTC)

func benchCommit[T any](b *testing.B, spec Spec[T], rows []T, cfg Config) {
	ctx := context.Background()
	lk, err := Open(ctx, "file://"+filepath.ToSlash(b.TempDir())+"/lake")
	if err != nil {
		b.Fatal(err)
	}
	defer lk.Close()
	w, err := NewWriter(ctx, lk, spec, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var input int64
	for i := range rows {
		input += spec.Size(&rows[i])
	}
	b.SetBytes(input)
	b.ReportAllocs()
	var files int64
	version := int64(0)
	b.ResetTimer()
	for b.Loop() {
		for i := range rows {
			w.Add(rows[i])
		}
		version++
		if _, err := w.Commit(ctx, "bench", version); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	full, err := delta.Open(ctx, lk.store, spec.Name, delta.Options{TrackFiles: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range full.Snapshot().Files() {
		files += a.Size
	}
	b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(files)/float64(int64(len(rows))*int64(b.N)), "file-bytes/row")
}

// benchCommitLevels runs benchCommit at each zstd level ("auto" is the default: the table's own
// level).
func benchCommitLevels[T any](b *testing.B, spec Spec[T], rows []T) {
	for _, level := range []string{"auto", "fastest", "default", "better"} {
		b.Run("level="+level, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.CompressionLevel = level
			benchCommit(b, spec, rows, cfg)
		})
	}
}

// BenchmarkCommitReadings: Add and Commit 1M random-walk readings (1,000 sensors, two date
// partitions) to a file:// lake with the default configuration, at each zstd level.
func BenchmarkCommitReadings(b *testing.B) {
	benchCommitLevels(b, ReadingsSpec(), ReadingsOf(genReadings(1_000_000, 1000, benchStart)))
}

// BenchmarkCommitRaw: the same messages as raw/ rows (payload ≈ 150 bytes of JSON).
func BenchmarkCommitRaw(b *testing.B) {
	benchCommitLevels(b, RawSpec(), genRaw(1_000_000, 1000, benchStart))
}

// BenchmarkEncodings encodes the benchmark data with the chosen column encodings and the
// alternatives that were measured against them, and reports bytes per row on disk: the whole file,
// and the column the variant changes.
func BenchmarkEncodings(b *testing.B) {
	readings := ReadingsOf(genReadings(200_000, 1000, benchStart))
	spec := ReadingsSpec()
	parts, perm := order(&spec, readings)
	sorted := make([]ReadingRow, 0, len(readings))
	for _, i := range perm[parts[0].lo:parts[0].hi] {
		sorted = append(sorted, readings[i].Row())
	}
	raw := genRaw(200_000, 1000, benchStart)
	type variant struct {
		name, column string
		cfg          func(*Config)
		tag          reflect.StructTag // replaces the column's parquet tag
		field        string
	}
	readingVariants := []variant{
		{name: "readings/chosen", column: "value"},
		{name: "readings/value=split", column: "value", field: "Value", tag: `parquet:"value,split"`},
		{name: "readings/value=dict", column: "value", field: "Value", tag: `parquet:"value,dict"`},
		{name: "readings/ts=plain", column: "ts", field: "TS", tag: `parquet:"ts,timestamp(microsecond:utc)"`},
		{name: "readings/level=better", column: "value", cfg: func(c *Config) { c.CompressionLevel = "better" }},
	}
	rawVariants := []variant{
		{name: "raw/chosen", column: "payload"},
		{name: "raw/payload=plain", column: "payload", field: "Payload", tag: `parquet:"payload"`},
		{name: "raw/level=fastest", column: "payload", cfg: func(c *Config) { c.CompressionLevel = "fastest" }},
		{name: "raw/level=better", column: "payload", cfg: func(c *Config) { c.CompressionLevel = "better" }},
	}
	run := func(b *testing.B, v variant, write func(opts []parquet.WriterOption, out io.Writer) (*format.FileMetaData, int)) {
		cfg := DefaultConfig()
		if v.cfg != nil {
			v.cfg(&cfg)
		}
		var extra []parquet.WriterOption
		if v.field != "" {
			extra = append(extra, parquet.StructTag(v.tag, v.field))
		}
		b.ReportAllocs()
		var size, col int64
		var rows int
		for b.Loop() {
			var cw countingWriter
			cw.w = discardFile{}
			md, n := write(extra, &cw)
			size, rows, col = cw.n, n, 0
			for _, rg := range md.RowGroups {
				for _, c := range rg.Columns {
					if c.MetaData.PathInSchema[0] == v.column {
						col += c.MetaData.TotalCompressedSize
					}
				}
			}
		}
		b.ReportMetric(float64(size)/float64(rows), "file-bytes/row")
		b.ReportMetric(float64(col)/float64(rows), v.column+"-bytes/row")
	}
	for _, v := range readingVariants {
		b.Run(v.name, func(b *testing.B) {
			run(b, v, func(extra []parquet.WriterOption, out io.Writer) (*format.FileMetaData, int) {
				var zero ReadingRow
				cfg := DefaultConfig()
				if v.cfg != nil {
					v.cfg(&cfg)
				}
				ps := parquet.SchemaOf(zero, schemaOptions(extra)...)
				pw := parquet.NewGenericWriter[ReadingRow](out, append(writerOptions(spec, ps, cfg), extra...)...)
				if _, err := pw.Write(sorted); err != nil {
					b.Fatal(err)
				}
				if err := pw.Close(); err != nil {
					b.Fatal(err)
				}
				return pw.File().Metadata(), len(sorted)
			})
		})
	}
	for _, v := range rawVariants {
		b.Run(v.name, func(b *testing.B) {
			run(b, v, func(extra []parquet.WriterOption, out io.Writer) (*format.FileMetaData, int) {
				var zero RawRow
				cfg := DefaultConfig()
				if v.cfg != nil {
					v.cfg(&cfg)
				}
				ps := parquet.SchemaOf(zero, schemaOptions(extra)...)
				pw := parquet.NewGenericWriter[RawRow](out, append(writerOptions(RawSpec(), ps, cfg), extra...)...)
				if _, err := pw.Write(raw); err != nil {
					b.Fatal(err)
				}
				if err := pw.Close(); err != nil {
					b.Fatal(err)
				}
				return pw.File().Metadata(), len(raw)
			})
		})
	}
}

type discardFile struct{}

func (discardFile) Write(p []byte) (int, error) { return len(p), nil }
func (discardFile) Close() error                { return nil }
func (discardFile) Abort()                      {}

func schemaOptions(opts []parquet.WriterOption) []parquet.SchemaOption {
	var out []parquet.SchemaOption
	for _, o := range opts {
		if so, ok := o.(parquet.SchemaOption); ok {
			out = append(out, so)
		}
	}
	return out
}

// BenchmarkWriteGroups: encode one readings/ file of 1M rows (1,000 sensors, one day, through the
// sort permutation) in row groups of the default size, serially and with writeGroups on up to
// GOMAXPROCS goroutines.
func BenchmarkWriteGroups(b *testing.B) {
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	readings := ReadingsOf(genReadings(1_000_000, 1000, start))
	spec := ReadingsSpec()
	cfg := DefaultConfig()
	opts := writerOptions(spec, spec.FileSchema(), cfg)
	parts, perm := order(&spec, readings)
	p := parts[0]
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := spec.encoding().writer(io.Discard, opts)
				if err := writeGroups(w, spec.encoding(), opts, cfg.RowGroupRows, workers, readings, p.lo, p.hi, perm[p.lo:p.hi]); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(p.hi-p.lo)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
