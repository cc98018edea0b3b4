package lake

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// EngineInfo goes into every commit's commitInfo.engineInfo.
const EngineInfo = "sluice"

// Writer appends rows to one table. There is one per table per process, used by one goroutine;
// several Writers (in one process or many) may append to one table at once, each with its own appIds.
type Writer[T any] struct {
	lk     *Lake
	spec   Spec[T]
	cfg    Config
	table  *delta.Table
	pqOpts []parquet.WriterOption
	stats  []statColumn
	now    func() time.Time
	chunk  []T // rows gathered for one Parquet write

	rows   []T
	bytes  int64
	oldest time.Time
	gen    uint64 // counts Adds, so a retry knows whether the rows changed

	// pending are the files a failed Commit wrote; a retry with the same rows (same gen) commits them
	// instead of writing them again.
	pending    []delta.Action
	pendingGen uint64
	pendingOK  bool
}

// NewWriter opens table spec.Name of lk, creating it (version 0: protocol and metaData) if absent,
// and checks that its schema and partitioning are spec's.
func NewWriter[T any](ctx context.Context, lk *Lake, spec Spec[T], cfg Config) (*Writer[T], error) {
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("lake writer: %w", err)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("lake writer %s: %w", spec.Name, errs.Err())
	}
	var zero T
	ps := parquet.SchemaOf(zero)
	schema, stats, err := deltaSchema(ps, spec.Partitioning)
	if err != nil {
		return nil, fmt.Errorf("lake writer %s: %w", spec.Name, err)
	}
	t, err := delta.Open(ctx, lk.store, spec.Name, delta.Options{
		CheckpointInterval: int64(cfg.CheckpointInterval), EngineInfo: EngineInfo,
		Logger: lk.logger.With("table", spec.Name),
	})
	if err != nil {
		return nil, err
	}
	partCols := []string{}
	for _, f := range spec.Partitioning.columns() {
		partCols = append(partCols, f.Name)
	}
	t.Expect(schema, partCols)
	schemaJSON, err := schema.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("lake writer %s: %w", spec.Name, err)
	}
	err = t.Create(ctx, delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, delta.Metadata{
		ID: uuid.NewString(), Description: spec.Description,
		Format:       delta.Format{Provider: "parquet", Options: map[string]string{}},
		SchemaString: string(schemaJSON), PartitionColumns: partCols, Configuration: map[string]string{},
	})
	if err != nil {
		return nil, fmt.Errorf("lake writer: %w", err)
	}
	w := &Writer[T]{lk: lk, spec: spec, cfg: cfg, table: t, stats: stats, now: time.Now}
	w.pqOpts = writerOptions(spec, ps, cfg)
	lk.m.version.WithLabelValues(spec.Name).Set(float64(t.Snapshot().Version()))
	return w, nil
}

// Add buffers a row. Its byte slices and strings stay referenced until Commit returns nil.
func (w *Writer[T]) Add(row T) {
	if len(w.rows) == 0 {
		w.oldest = w.now()
	}
	w.rows = append(w.rows, row)
	w.bytes += w.spec.Size(&w.rows[len(w.rows)-1]) // not &row: that would move every row to the heap
	w.gen++
}

// Buffered reports the rows buffered since the last successful Commit, their estimated memory, and
// when the first of them was added (zero when none).
func (w *Writer[T]) Buffered() (rows int, bytes int64, oldest time.Time) {
	return len(w.rows), w.bytes, w.oldest
}

// TxnVersion reads the commits made since it last looked (by any writer) and returns the latest txn
// version of appID; ok is false when the table holds none.
func (w *Writer[T]) TxnVersion(ctx context.Context, appID string) (version int64, ok bool, err error) {
	if _, err := w.table.Update(ctx); err != nil {
		return 0, false, fmt.Errorf("lake %s: txn version of %s: %w", w.spec.Name, appID, err)
	}
	st, ok := w.table.Snapshot().Txn(appID)
	return st.Version, ok, nil
}

// Commit makes every buffered row part of the table, together with the txn (appID, version), in one
// Delta commit, and returns its table version. The data files are written first; a file the log does
// not name is not part of the table. With no rows buffered, the commit holds only the txn.
//
// If the log already holds appID at version or later, that earlier commit stands for this one: the
// buffered rows are dropped, nothing is written, and its table version is returned. So a Commit
// retried after an error whose outcome was unknown never adds the rows twice.
//
// On error the rows stay buffered (and files already written are reused) for a retry with the same
// appID and version. On success the buffer is empty and the rows' memory may be reused.
func (w *Writer[T]) Commit(ctx context.Context, appID string, version int64) (int64, error) {
	start := w.now()
	name := w.spec.Name
	conflicts := w.table.Conflicts()
	v, err := w.commit(ctx, appID, version)
	w.lk.m.conflicts.WithLabelValues(name).Add(float64(w.table.Conflicts() - conflicts))
	w.lk.m.version.WithLabelValues(name).Set(float64(w.table.Snapshot().Version()))
	if err != nil {
		w.lk.m.commitErrors.WithLabelValues(name).Inc()
		return -1, fmt.Errorf("lake %s: commit %s@%d: %w", name, appID, version, err)
	}
	w.lk.m.commitSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	return v, nil
}

func (w *Writer[T]) commit(ctx context.Context, appID string, version int64) (int64, error) {
	if _, err := w.table.Update(ctx); err != nil {
		return -1, err
	}
	if st, ok := w.table.Snapshot().Txn(appID); ok && st.Version >= version {
		if len(w.rows) > 0 {
			w.lk.logger.Info("lake commit already in the log; dropping the buffered rows as a repeat",
				"table", w.spec.Name, "app_id", appID, "version", version, "logged_version", st.Version, "table_version", st.CommitVersion, "rows", len(w.rows))
		}
		w.lk.m.landed.WithLabelValues(w.spec.Name).Inc()
		w.reset()
		return st.CommitVersion, nil
	}
	now := w.now()
	adds := w.pending
	if !w.pendingOK || w.pendingGen != w.gen {
		var err error
		if adds, err = w.writeFiles(ctx, now.UnixMilli()); err != nil {
			return -1, err
		}
		w.pending, w.pendingGen, w.pendingOK = adds, w.gen, true
	}
	lu := now.UnixMilli()
	actions := append(slices.Clip(adds), delta.Action{Txn: &delta.Txn{AppID: appID, Version: version, LastUpdated: &lu}})
	var size int64
	for _, a := range adds {
		size += a.Add.Size
	}
	v, err := w.table.Commit(ctx, delta.Commit{
		Actions: actions, Operation: "STREAMING UPDATE",
		Params: map[string]string{"outputMode": "Append", "queryId": appID, "epochId": delta.Itoa(version)},
		Metrics: map[string]string{
			"numAddedFiles": delta.Itoa(int64(len(adds))), "numRemovedFiles": "0",
			"numOutputRows": delta.Itoa(int64(len(w.rows))), "numOutputBytes": delta.Itoa(size),
		},
	})
	if err != nil {
		return -1, err
	}
	name := w.spec.Name
	w.lk.m.commits.WithLabelValues(name).Inc()
	w.lk.m.rows.WithLabelValues(name).Add(float64(len(w.rows)))
	w.lk.m.files.WithLabelValues(name).Add(float64(len(adds)))
	w.lk.m.bytes.WithLabelValues(name).Add(float64(size))
	w.reset()
	return v, nil
}

// reset empties the buffer after a commit.
func (w *Writer[T]) reset() {
	clear(w.rows) // drop references to the caller's memory
	if cap(w.rows) > 4*len(w.rows) && cap(w.rows) > 1<<16 {
		w.rows = nil // a burst grew the buffer far past what is used: let it go
	}
	w.rows = w.rows[:0]
	w.bytes, w.oldest = 0, time.Time{}
	w.pending, w.pendingOK = nil, false
}

// writeFiles writes the buffered rows, one file per partition, each in the spec's order, and returns
// their add actions. On error it removes the files it wrote (they are not in the log: removing them
// only saves space).
func (w *Writer[T]) writeFiles(ctx context.Context, now int64) ([]delta.Action, error) {
	parts, perm := order(&w.spec, w.rows)
	var adds []delta.Action
	for _, part := range parts {
		dir, pv := w.spec.Partitioning.dir(part.key)
		var idx []int32
		if perm != nil {
			idx = perm[part.lo:part.hi]
		}
		add, err := w.writeFile(ctx, dir, pv, w.rows[part.lo:part.hi], idx, now)
		if err != nil {
			for _, a := range adds {
				p, _ := delta.UnescapePath(a.Add.Path)
				_ = w.lk.store.Delete(context.WithoutCancel(ctx), w.table.Root()+p)
			}
			return nil, err
		}
		adds = append(adds, delta.Action{Add: add})
	}
	return adds, nil
}
