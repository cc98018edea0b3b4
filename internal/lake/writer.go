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

	// Spooled rows (see spool.go): the files being built in memory and the rows they hold (used by
	// the Writer's goroutine).
	spooled     []*spoolFile[T]
	spooledRows int

	rows   []T
	bytes  int64
	oldest time.Time
	gen    uint64 // counts Adds, so a retry knows whether the rows changed

	// pending are the files a failed Commit wrote; a retry with the same rows (same gen) commits them
	// instead of writing them again.
	pending    files
	pendingGen uint64

	lastSealed int // rows in the last sealed Batch
}

// files are the data files written for a set of rows, not yet committed.
type files struct {
	adds []delta.Action
	ok   bool
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
	ps := spec.FileSchema()
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
	if len(w.rows) == 0 && w.spooledRows == 0 {
		w.oldest = w.now()
		if cap(w.rows) == 0 && w.lastSealed > 0 {
			// After a Seal: start at a quarter of the last batch rather than from nothing (fewer
			// copies as it grows), but not at its full size: the sealed batch's buffer is freed
			// once it is committed, so at most one full buffer is alive.
			w.rows = make([]T, 0, w.lastSealed/4)
		}
	}
	if len(w.rows) == cap(w.rows) {
		w.grow()
	}
	w.rows = append(w.rows, row)
	w.bytes += w.spec.Size(&w.rows[len(w.rows)-1]) // not &row: that would move every row to the heap
	w.gen++
}

// grow makes room for more rows: it doubles the buffer (append would grow a large one by a quarter
// at a time, copying it five times over on the way to a million rows), but not far past
// lake.flush_rows, where the stage commits (it checks after each batch of records, so the buffer
// may pass the limit by a little).
func (w *Writer[T]) grow() {
	n := len(w.rows)
	want := max(2*n, 1024)
	if limit := w.cfg.FlushRows + w.cfg.FlushRows/8; w.cfg.FlushRows > 0 && n < limit && want > limit {
		want = limit
	}
	w.rows = slices.Grow(w.rows, want-n)
}

// Buffered reports the rows buffered since the last successful Commit or Seal, their estimated
// memory (spooled rows count as their compressed bytes), and when the first of them was added (zero
// when none).
func (w *Writer[T]) Buffered() (rows int, bytes int64, oldest time.Time) {
	if w.spooledRows > 0 {
		return len(w.rows) + w.spooledRows, w.bytes + w.spooledBytes(), w.oldest
	}
	return len(w.rows), w.bytes, w.oldest
}

// TxnVersion reads the commits made since it last looked (by any writer) and returns the latest txn
// version of appID; ok is false when the table holds none.
func (w *Writer[T]) TxnVersion(ctx context.Context, appID string) (version int64, ok bool, err error) {
	st, ok, err := w.loggedTxn(ctx, appID)
	if err != nil {
		return 0, false, fmt.Errorf("lake %s: txn version of %s: %w", w.spec.Name, appID, err)
	}
	return st.Version, ok, nil
}

// loggedTxn reads the commits made since it last looked (by any writer) and returns appID's txn in
// the log; ok is false when the table holds none.
func (w *Writer[T]) loggedTxn(ctx context.Context, appID string) (delta.TxnState, bool, error) {
	if _, err := w.table.Update(ctx); err != nil {
		return delta.TxnState{}, false, err
	}
	st, ok := w.table.Snapshot().Txn(appID)
	return st, ok, nil
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
	if w.spooledRows > 0 {
		return -1, fmt.Errorf("lake %s: commit %s@%d: the writer holds spooled rows: commit them with Seal and Batch.Commit", w.spec.Name, appID, version)
	}
	if w.pendingGen != w.gen {
		w.pending = files{} // rows were added since the failed attempt: write them all again
	}
	rows := w.rows
	v, err := w.commitRows(ctx, len(rows), func(ctx context.Context, now int64) ([]delta.Action, error) {
		return w.writeFiles(ctx, rows, now)
	}, &w.pending, appID, version)
	w.pendingGen = w.gen
	if err != nil {
		return -1, err
	}
	w.reset()
	return v, nil
}

// Batch is the rows a Writer buffered, taken out of it by Seal to be committed later, possibly on
// another goroutine, while the Writer buffers the next rows.
type Batch[T any] struct {
	w       *Writer[T]
	rows    []T
	built   []builtFile // spooled rows, as finished files (rows is nil then)
	err     error       // why the spooled files could not be finished
	n       int         // rows in the batch
	bytes   int64
	pending files
	version int64 // table version once committed
	done    bool
}

// Seal takes the buffered rows out of the Writer as a Batch and leaves the Writer's buffer empty,
// ready for the next Adds. Files a failed Commit of the Writer wrote for those rows go with them.
// When rows were spooled, the rest are spooled too and the Batch holds the finished files. Like Add,
// Seal is called by the Writer's goroutine. If the spooled files cannot be finished (rows that
// cannot be encoded: a bug), the Batch's Commit fails every time with why, so the caller never
// commits past them.
func (w *Writer[T]) Seal() *Batch[T] {
	if w.spooledRows > 0 {
		built, n, err := w.finishSpool()
		b := &Batch[T]{w: w, built: built, n: n, err: err}
		for _, f := range built {
			b.bytes += int64(len(f.data))
		}
		w.bytes, w.oldest = 0, time.Time{}
		w.gen++
		w.pendingGen = w.gen
		return b
	}
	b := &Batch[T]{w: w, rows: w.rows, n: len(w.rows), bytes: w.bytes}
	w.lastSealed = len(w.rows)
	if w.pendingGen == w.gen {
		b.pending = w.pending
	}
	w.rows = nil
	w.bytes, w.oldest = 0, time.Time{}
	w.pending = files{}
	w.gen++
	w.pendingGen = w.gen
	return b
}

// BatchOf returns a Batch of rows that were never buffered with Add (a table derived from another
// one's sealed rows, say). It is committed like a sealed Batch, in order with them.
func (w *Writer[T]) BatchOf(rows []T) *Batch[T] {
	var bytes int64
	for i := range rows {
		bytes += w.spec.Size(&rows[i])
	}
	return &Batch[T]{w: w, rows: rows, n: len(rows), bytes: bytes}
}

// Rows returns the batch's rows until it is committed (nil after, and for spooled rows). The caller
// must not modify them.
func (b *Batch[T]) Rows() []T { return b.rows }

// Len returns the batch's rows and their estimated memory (spooled rows: their compressed bytes).
func (b *Batch[T]) Len() (rows int, bytes int64) { return b.n, b.bytes }

// Commit makes the batch's rows part of the table with the txn (appID, version), as Writer.Commit
// does for the buffered rows, and returns the table version. On error it may be called again, with
// the same appID and version (files already written are reused); once it succeeded, it returns the
// same version without doing anything.
//
// A Writer's batches must be committed one at a time, in the order they were sealed, and not while
// the Writer's goroutine calls Commit or TxnVersion (they share the table's log state); Add, Buffered
// and Seal may run meanwhile.
func (b *Batch[T]) Commit(ctx context.Context, appID string, version int64) (int64, error) {
	if b.done {
		return b.version, nil
	}
	if b.err != nil {
		return -1, b.err
	}
	v, err := b.w.commitRows(ctx, b.n, b.write, &b.pending, appID, version)
	if err != nil {
		return -1, err
	}
	b.version, b.done = v, true
	b.rows, b.built, b.pending = nil, nil, files{} // let the rows and what they reference go
	return v, nil
}

// Prepare writes the data files of the batch's commit with the txn (appID, version), durable when it
// returns nil, without committing them: Commit then only writes the log. So the files of several
// tables can be written at once while their commits stay in order. Prepare is called as Commit is
// (one batch of a Writer at a time, in the order they were sealed) and never at the same time as the
// batch's Commit. When the log holds the txn already, it writes nothing (Commit will drop the rows).
func (b *Batch[T]) Prepare(ctx context.Context, appID string, version int64) error {
	if b.done || b.err != nil || b.pending.ok {
		return nil // Commit returns b.err
	}
	if st, ok, err := b.w.loggedTxn(ctx, appID); err != nil {
		return fmt.Errorf("lake %s: write files: %w", b.w.spec.Name, err)
	} else if ok && st.Version >= version {
		return nil
	}
	adds, err := b.write(ctx, b.w.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("lake %s: write files: %w", b.w.spec.Name, err)
	}
	b.pending = files{adds: adds, ok: true}
	return nil
}

// write writes the batch's data files.
func (b *Batch[T]) write(ctx context.Context, now int64) ([]delta.Action, error) {
	if b.built != nil {
		return b.w.putBuilt(ctx, b.built, now)
	}
	return b.w.writeFiles(ctx, b.rows, now)
}

// writeFunc writes a commit's data files (n rows) and returns their add actions.
type writeFunc func(ctx context.Context, now int64) ([]delta.Action, error)

// commitRows commits n rows, whose files write writes, with the txn (appID, version): the body of
// Writer.Commit and Batch.Commit. fs holds the files already written for them by a failed attempt,
// and receives them.
func (w *Writer[T]) commitRows(ctx context.Context, n int, write writeFunc, fs *files, appID string, version int64) (int64, error) {
	start := w.now()
	name := w.spec.Name
	conflicts := w.table.Conflicts()
	v, err := w.commit(ctx, n, write, fs, appID, version)
	w.lk.m.conflicts.WithLabelValues(name).Add(float64(w.table.Conflicts() - conflicts))
	w.lk.m.version.WithLabelValues(name).Set(float64(w.table.Snapshot().Version()))
	if err != nil {
		w.lk.m.commitErrors.WithLabelValues(name).Inc()
		return -1, fmt.Errorf("lake %s: commit %s@%d: %w", name, appID, version, err)
	}
	w.lk.m.commitSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	return v, nil
}

func (w *Writer[T]) commit(ctx context.Context, n int, write writeFunc, fs *files, appID string, version int64) (int64, error) {
	st, ok, err := w.loggedTxn(ctx, appID)
	if err != nil {
		return -1, err
	}
	if ok && st.Version >= version {
		if n > 0 {
			w.lk.logger.Info("lake commit already in the log; dropping the buffered rows as a repeat",
				"table", w.spec.Name, "app_id", appID, "version", version, "logged_version", st.Version, "table_version", st.CommitVersion, "rows", n)
		}
		w.lk.m.landed.WithLabelValues(w.spec.Name).Inc()
		return st.CommitVersion, nil
	}
	now := w.now()
	if !fs.ok {
		adds, err := write(ctx, now.UnixMilli())
		if err != nil {
			return -1, err
		}
		*fs = files{adds: adds, ok: true}
	}
	adds := fs.adds
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
			"numOutputRows": delta.Itoa(int64(n)), "numOutputBytes": delta.Itoa(size),
		},
	})
	if err != nil {
		return -1, err
	}
	name := w.spec.Name
	w.lk.m.commits.WithLabelValues(name).Inc()
	w.lk.m.rows.WithLabelValues(name).Add(float64(n))
	w.lk.m.files.WithLabelValues(name).Add(float64(len(adds)))
	w.lk.m.bytes.WithLabelValues(name).Add(float64(size))
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
	w.pending = files{}
	w.gen++
	w.pendingGen = w.gen
}

// writeFiles writes rows, one file per partition, each in the spec's order, and returns
// their add actions. On error it removes the files it wrote (they are not in the log: removing them
// only saves space).
func (w *Writer[T]) writeFiles(ctx context.Context, rows []T, now int64) ([]delta.Action, error) {
	parts, perm := order(&w.spec, rows)
	var adds []delta.Action
	for _, part := range parts {
		dir, pv := w.spec.Partitioning.dir(part.key)
		var idx []int32
		if perm != nil {
			idx = perm[part.lo:part.hi]
		}
		add, err := w.writeFile(ctx, dir, pv, rows, part.lo, part.hi, idx, now)
		if err != nil {
			w.removeFiles(ctx, adds)
			return nil, err
		}
		adds = append(adds, delta.Action{Add: add})
	}
	return adds, nil
}

// removeFiles deletes the data files of adds, written for a commit that failed (they are not in
// the log: removing them only saves space).
func (w *Writer[T]) removeFiles(ctx context.Context, adds []delta.Action) {
	for _, a := range adds {
		p, _ := delta.UnescapePath(a.Add.Path)
		_ = w.lk.store.Delete(context.WithoutCancel(ctx), w.table.Root()+p)
	}
}
