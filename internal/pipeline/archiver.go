package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/lake"
	slog2 "github.com/sluice-project/sluice/internal/log"
)

// ArchiverName is the archiver's consumer group and the prefix of its Delta appIds.
const ArchiverName = "archiver"

// SourceCorrupt is the source written for a log record that is not a valid envelope (a bug or disk
// corruption): its bytes are archived whole, so nothing is lost.
const SourceCorrupt = "corrupt"

// Archiver is the stage that writes every envelope, payload bytes untouched, to the raw/ table.
type Archiver struct {
	raw    *lake.Writer[lake.RawRow]
	policy FlushPolicy
	spool  int64 // lake.row_group_bytes: encode the buffered rows past this much memory
	arena  arena
	topics interner
	since  time.Time
	view   envelope.View
}

// NewArchiver opens (or creates) the raw/ table of lk.
func NewArchiver(ctx context.Context, lk *lake.Lake, cfg lake.Config) (*Archiver, error) {
	w, err := lake.NewWriter(ctx, lk, lake.RawSpec(), cfg)
	if err != nil {
		return nil, fmt.Errorf("archiver: %w", err)
	}
	return &Archiver{raw: w, policy: policyOf(cfg), spool: int64(cfg.RowGroupBytes), topics: interner{max: 100_000}}, nil
}

func policyOf(cfg lake.Config) FlushPolicy {
	return FlushPolicy{Rows: cfg.FlushRows, Bytes: int64(cfg.FlushBytes), Age: cfg.FlushInterval}
}

func appID(stage string, p int32) string { return fmt.Sprintf("%s-p%d", stage, p) }

// Resume implements Stage.
func (a *Archiver) Resume(ctx context.Context, p int32) (int64, error) {
	v, ok, err := a.raw.TxnVersion(ctx, appID(ArchiverName, p))
	if err != nil || !ok {
		return 0, err
	}
	return v + 1, nil
}

// Process implements Stage.
func (a *Archiver) Process(ctx context.Context, recs []slog2.Record) error {
	if a.since.IsZero() && len(recs) > 0 {
		a.since = time.Now()
	}
	for _, rec := range recs {
		row := lake.RawRow{IngestID: rec.Offset}
		if err := envelope.DecodeView(rec.Value, &a.view); err != nil {
			row.ReceivedAt = time.Now().UnixMicro()
			row.Source = SourceCorrupt
			row.Payload = a.arena.copy(rec.Value)
		} else {
			row.ReceivedAt = a.view.ReceivedAt / 1000
			row.Source = a.view.Source.String()
			row.Topic = a.topics.intern(a.view.Topic)
			row.QoS = int32(a.view.QoS)
			row.Payload = a.arena.copy(a.view.Payload)
		}
		a.raw.Add(row)
	}
	if a.spool > 0 && a.raw.Unspooled() >= a.spool {
		// The rows become a compressed row group of the next commit's file; the payload copies
		// they referenced are free, and their chunks hold the next ones.
		if err := a.raw.Spool(); err != nil {
			return fmt.Errorf("archiver: %w", err)
		}
		a.arena.recycle()
	}
	return nil
}

// Due implements Stage.
func (a *Archiver) Due(now time.Time) bool {
	rows, bytes, _ := a.raw.Buffered()
	return a.policy.due(rows, bytes, a.since, now)
}

// Seal implements Stage.
func (a *Archiver) Seal(p int32, last int64) CommitFunc {
	b := a.raw.Seal()
	a.arena.reset() // the sealed rows keep their chunks
	a.since = time.Time{}
	app := appID(ArchiverName, p)
	return func(ctx context.Context) error {
		if _, err := b.Commit(ctx, app, last); err != nil {
			return fmt.Errorf("archiver commit raw up to offset %d: %w", last, err)
		}
		return nil
	}
}
