package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/lake"
	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/sensor"
)

// DecoderName is the decoder's consumer group and the prefix of its Delta appIds.
const DecoderName = "decoder"

// ReasonBadEnvelope is the quarantine reason for a log record that is not a valid envelope.
const ReasonBadEnvelope = "bad_envelope"

// Decoder is the stage that decodes payloads into readings/, sends what cannot be decoded to
// quarantine/ with its reason, and aggregates each commit's readings by minute into readings_1m/.
//
// readings/ is its primary table: the stage resumes after the offset readings/ last committed.
// quarantine/ and readings_1m/ commit first, and only when they hold rows; their own txn versions
// filter what a replay would add twice. So a crash between the commits neither loses nor repeats a
// row.
type Decoder struct {
	lake       *lake.Lake
	readings   *lake.Writer[lake.Reading]
	quarantine *lake.Writer[lake.QuarantineRow]
	rollup     *lake.Writer[lake.Reading1mRow] // used by the commit goroutine only
	pool       decodePool
	dedup      *Dedup
	policy     FlushPolicy
	m          *decoderMetrics

	readingsTxn   map[int32]int64 // last offset committed to readings/, per partition (-1: none)
	quarantineTxn map[int32]int64 // likewise for quarantine/
	rollupTxn     map[int32]int64 // likewise for readings_1m/

	hot     HotSink        // nil: no SQL engine to feed
	hotRows []lake.Reading // this batch's readings for hot, all of partition hotPart
	hotPart int32
	series  seriesTable // the Series of buffered readings

	warmed     bool // the dedup window holds the keys committed within it before this process started
	pendingReg atomic.Pointer[sensor.Registry]
	arena      arena
	topics     interner // quarantined messages' topics
	since      time.Time
}

// NewDecoder opens (or creates) the readings/ and quarantine/ tables of lk.
func NewDecoder(ctx context.Context, lk *lake.Lake, lcfg lake.Config, dcfg decode.Config, reg *sensor.Registry, dd DedupConfig, mreg prometheus.Registerer) (*Decoder, error) {
	rw, err := lake.NewWriter(ctx, lk, lake.ReadingsSpec(), lcfg)
	if err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	qw, err := lake.NewWriter(ctx, lk, lake.QuarantineSpec(), lcfg)
	if err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	mw, err := lake.NewWriter(ctx, lk, lake.Readings1mSpec(), lcfg)
	if err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	decs := make([]*decode.Decoder, decodeWorkers())
	for i := range decs {
		if decs[i], err = decode.New(dcfg, reg); err != nil {
			return nil, fmt.Errorf("decoder: %w", err)
		}
	}
	return &Decoder{
		lake: lk, readings: rw, quarantine: qw, rollup: mw, pool: decodePool{decs: decs}, dedup: NewDedup(dd), policy: policyOf(lcfg),
		m:           newDecoderMetrics(mreg),
		readingsTxn: map[int32]int64{}, quarantineTxn: map[int32]int64{}, rollupTxn: map[int32]int64{},
		topics: interner{max: 100_000}, series: seriesTable{max: 4 * dcfg.InternSize},
	}, nil
}

// HotSink receives the readings the decoder has processed but not yet committed, and hears of each
// commit of readings/, so SQL sees readings before their file lands (package query implements it).
// AddReadings is called from the decoder's goroutine (rows is reused after it returns: copy it);
// CommittedReadings from the decoder's commit goroutine, after the commit is durable, possibly while
// AddReadings runs with rows past last: implementations must be safe for that.
type HotSink interface {
	AddReadings(partition int32, rows []lake.Reading)
	CommittedReadings(ctx context.Context, partition int32, last int64)
}

// SetHot makes the decoder feed h. Call it before the stage runs.
func (d *Decoder) SetHot(h HotSink) { d.hot = h }

// DecoderAppID is the Delta appId of the decoder's commits for partition p: its txn version in
// readings/ is the last log offset committed.
func DecoderAppID(p int32) string { return appID(DecoderName, p) }

// flushHot hands the batch's readings to the hot sink.
func (d *Decoder) flushHot() {
	if len(d.hotRows) > 0 {
		d.hot.AddReadings(d.hotPart, d.hotRows)
		d.hotRows = d.hotRows[:0]
	}
}

// SetRegistry hands the decoder a new sensor registry; it applies from the next batch of records.
// Safe to call from any goroutine.
func (d *Decoder) SetRegistry(reg *sensor.Registry) { d.pendingReg.Store(reg) }

// Resume implements Stage.
func (d *Decoder) Resume(ctx context.Context, p int32) (int64, error) {
	app := appID(DecoderName, p)
	rv, rok, err := d.readings.TxnVersion(ctx, app)
	if err != nil {
		return 0, err
	}
	qv, qok, err := d.quarantine.TxnVersion(ctx, app)
	if err != nil {
		return 0, err
	}
	mv, mok, err := d.rollup.TxnVersion(ctx, app)
	if err != nil {
		return 0, err
	}
	if !rok {
		rv = -1
	}
	if !qok {
		qv = -1
	}
	if !mok {
		mv = -1
	}
	d.readingsTxn[p], d.quarantineTxn[p], d.rollupTxn[p] = rv, qv, mv
	if err := d.warmDedup(ctx); err != nil {
		return 0, err
	}
	return rv + 1, nil
}

// dedupKeyRow is the part of a readings/ row the deduplication window needs.
type dedupKeyRow struct {
	SensorID string `parquet:"sensor_id"`
	Metric   string `parquet:"metric"`
	TS       int64  `parquet:"ts"`
}

// warmDedup fills the deduplication window with the keys of the readings committed within it, once
// per process: a message redelivered after a crash (its PUBACK was lost, so the publisher or broker
// sent it again) may arrive after its first copy was committed, and must still be recognised.
func (d *Decoder) warmDedup(ctx context.Context) error {
	if d.warmed || d.dedup.cfg.Window <= 0 {
		return nil
	}
	files, err := d.lake.FilesSince(ctx, lake.ReadingsSpec().Name, time.Now().Add(-d.dedup.cfg.Window))
	if err != nil {
		return fmt.Errorf("decoder: warm deduplication window: %w", err)
	}
	for _, f := range files {
		rows, err := lake.ReadFile[dedupKeyRow](ctx, d.lake, f)
		if err != nil {
			return fmt.Errorf("decoder: warm deduplication window: %w", err)
		}
		for _, r := range rows {
			d.dedup.Seen(r.SensorID, r.Metric, r.TS)
		}
	}
	d.warmed = true
	return nil
}

// Process implements Stage. Payloads are decoded on the decode pool's goroutines; the readings
// are deduplicated and buffered here, in record order.
func (d *Decoder) Process(ctx context.Context, recs []slog2.Record) error {
	if d.since.IsZero() && len(recs) > 0 {
		d.since = time.Now()
	}
	d.dedup.Tick()
	if reg := d.pendingReg.Swap(nil); reg != nil {
		for _, dec := range d.pool.decs {
			dec.SetRegistry(reg)
		}
	}
	decoded := 0
	d.pool.run(recs, func(c *decodeChunk) {
		start := int32(0)
		for i := range c.recs {
			o := &c.out[i]
			d.add(&c.recs[i], o, c.rd[start:o.end])
			decoded += int(o.end - start)
			start = o.end
		}
	})
	d.m.readings.Add(float64(decoded))
	if d.hot != nil {
		d.flushHot()
	}
	return nil
}

// add buffers what one record decoded to: its readings that are not duplicates, or its quarantine
// row.
func (d *Decoder) add(rec *slog2.Record, o *decodedRecord, rs []decode.Reading) {
	rtx, qtx := d.readingsTxn[rec.Partition], d.quarantineTxn[rec.Partition]
	if o.envErr != nil {
		if rec.Offset > qtx {
			d.quarantine.Add(lake.QuarantineRow{
				IngestID: rec.Offset, ReceivedAt: time.Now().UnixMicro(), Source: SourceCorrupt,
				Payload: d.arena.copy(rec.Value), Reason: ReasonBadEnvelope, Detail: o.envErr.Error(),
			})
			d.m.quarantined.WithLabelValues(ReasonBadEnvelope).Inc()
		}
		return
	}
	v := &o.view
	if o.err != nil {
		reason, detail := "undecodable", o.err.Error()
		var de *decode.Error
		if errors.As(o.err, &de) {
			reason, detail = string(de.Reason), de.Detail
		}
		if rec.Offset > qtx {
			d.quarantine.Add(lake.QuarantineRow{
				IngestID: rec.Offset, ReceivedAt: v.ReceivedAt / 1000, Source: v.Source.String(),
				Topic: d.topics.intern(v.Topic), Payload: d.arena.copy(v.Payload), Reason: reason, Detail: detail,
			})
		}
		d.m.quarantined.WithLabelValues(reason).Inc()
		return
	}
	for i := range rs {
		r := &rs[i]
		dup, last := d.dedup.SeenSeries(r.SensorID, r.Metric, r.TS)
		if dup {
			d.m.duplicates.Inc()
			continue
		}
		if rec.Offset <= rtx {
			continue // already committed before the restart; seen only to warm the window
		}
		row := lake.Reading{Series: d.seriesOf(r, last), TS: r.TS, Value: r.Value, ReceivedAt: v.ReceivedAt / 1000, IngestID: rec.Offset}
		d.readings.Add(row)
		if d.hot != nil {
			if rec.Partition != d.hotPart {
				d.flushHot()
				d.hotPart = rec.Partition
			}
			d.hotRows = append(d.hotRows, row)
		}
	}
}

// Due implements Stage.
func (d *Decoder) Due(now time.Time) bool {
	rr, rb, _ := d.readings.Buffered()
	qr, qb, _ := d.quarantine.Buffered()
	return d.policy.due(rr+qr, rb+qb, d.since, now)
}

// Seal implements Stage. The commit commits quarantine/ first (when it has rows), then the minutes
// of the readings to readings_1m/ (when there are any it does not hold yet), then readings/, whose
// files it writes meanwhile, then tells the hot sink.
func (d *Decoder) Seal(p int32, last int64) CommitFunc {
	app := appID(DecoderName, p)
	var qb *lake.Batch[lake.QuarantineRow]
	if rows, _, _ := d.quarantine.Buffered(); rows > 0 {
		// Rows are only buffered for offsets past the quarantine's txn version (see Process), so
		// this commit moves it forward.
		qb = d.quarantine.Seal()
	}
	rb := d.readings.Seal()
	var mb *lake.Batch[lake.Reading1mRow]
	mtx := d.rollupTxn[p]
	d.arena.reset() // the sealed rows keep their chunks
	d.since = time.Time{}
	hot := d.hot
	return func(ctx context.Context) error {
		// readings/ files are written while the minutes are computed and quarantine/ and readings_1m/
		// committed: the commits stay in order, the work of writing them does not wait.
		var prepare sync.WaitGroup
		var prepareErr error
		prepare.Go(func() { prepareErr = rb.Prepare(ctx, app, last) })
		defer prepare.Wait() // the files are written from rb's rows: never past the return
		if qb != nil {
			if _, err := qb.Commit(ctx, app, last); err != nil { // a no-op once it succeeded
				return fmt.Errorf("decoder commit quarantine up to offset %d: %w", last, err)
			}
		}
		if mb == nil { // once: a retry commits the same rows
			mb = d.rollup.BatchOf(Rollup1m(rb.Rows(), func(r *lake.Reading) bool { return r.IngestID > mtx }))
		}
		if n, _ := mb.Len(); n > 0 {
			if _, err := mb.Commit(ctx, app, last); err != nil {
				return fmt.Errorf("decoder commit readings_1m up to offset %d: %w", last, err)
			}
		}
		if prepare.Wait(); prepareErr != nil {
			return fmt.Errorf("decoder commit readings up to offset %d: %w", last, prepareErr)
		}
		if _, err := rb.Commit(ctx, app, last); err != nil {
			return fmt.Errorf("decoder commit readings up to offset %d: %w", last, err)
		}
		if hot != nil {
			hot.CommittedReadings(ctx, p, last)
		}
		return nil
	}
}

type decoderMetrics struct {
	readings    prometheus.Counter
	duplicates  prometheus.Counter
	quarantined *prometheus.CounterVec
}

func newDecoderMetrics(reg prometheus.Registerer) *decoderMetrics {
	m := &decoderMetrics{
		readings:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_decoder_readings_total", Help: "Readings decoded from payloads (before deduplication)."}),
		duplicates:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_decoder_duplicates_total", Help: "Readings dropped as duplicates of (sensor_id, metric, ts) within the window."}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_decoder_quarantined_total", Help: "Messages sent to quarantine/, by reason."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.readings, m.duplicates, m.quarantined)
	}
	return m
}

// seriesOf returns the lake.Series of r: the one its (sensor_id, metric) used last, kept in the
// deduplication window's slot (last, nil when there is none), when unit and flags are the same
// again, which saves a second lookup. A series new to the window gets a Series of its own, kept
// only in the slot: the series table, and its entry per series (about 100 bytes; 100,000 sensors
// took 11 MB), serves only readings whose unit or flags differ from their series' last one, and
// every reading when deduplication is off.
func (d *Decoder) seriesOf(r *decode.Reading, last **lake.Series) *lake.Series {
	if last == nil {
		return d.series.get(r)
	}
	s := *last
	switch {
	case s == nil:
		s = newSeries(r)
	case s.Unit == r.Unit && sameNames(s.Flags, r.Flags.Names()) && s.SensorID == r.SensorID && s.Metric == r.Metric:
		return s
	default:
		s = d.series.get(r)
	}
	*last = s
	return s
}

func newSeries(r *decode.Reading) *lake.Series {
	return &lake.Series{SensorID: r.SensorID, Metric: r.Metric, Unit: r.Unit, Flags: r.Flags.Names()}
}

// sameNames reports whether a and b are the same shared list of flag names (decode.Flags.Names
// returns one list per combination).
func sameNames(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// seriesTable interns the lake.Series of the readings the decoder buffers: one per distinct (sensor,
// metric, unit, flags), so a buffered reading holds one pointer. Past max entries it starts afresh
// (rows already buffered keep theirs). Used by the decoder's goroutine.
type seriesTable struct {
	m   map[seriesTableKey]*lake.Series
	max int
}

type seriesTableKey struct {
	sensor, metric, unit string
	flags                decode.Flags
}

func (t *seriesTable) get(r *decode.Reading) *lake.Series {
	k := seriesTableKey{r.SensorID, r.Metric, r.Unit, r.Flags}
	if s := t.m[k]; s != nil {
		return s
	}
	if t.m == nil || len(t.m) >= t.max {
		t.m = make(map[seriesTableKey]*lake.Series)
	}
	s := newSeries(r)
	t.m[k] = s
	return s
}
