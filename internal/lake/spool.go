package lake

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// Spooling: a Writer that is told to Spool encodes the rows it buffered into one Parquet row group
// per partition (in the spec's order within the group) of files it builds in memory, and lets the
// rows go. A file of a million raw/ rows then costs its compressed size (about 9 bytes a row) plus
// the rows of one row group, instead of all its rows (about 260 bytes each, payload included), so
// memory no longer grows with lake.flush_rows: the rows of one commit are kept only as compressed
// bytes until the commit is durable, and a retried commit writes the same bytes again.
//
// The price is order: rows are in the spec's order within each row group, not across the file (a
// row group's sorting_columns says so; Parquet declares them per row group). raw/ spools, since its
// order serves compression, not readers; readings/ does not: its files are sorted as a whole, so a
// filter on sensor_id skips most row groups.

// spoolFile is one partition's file being built in memory.
type spoolFile[T any] struct {
	key int64
	rel string
	pv  map[string]string
	buf bytes.Buffer
	pw  rowWriter[T]
}

// builtFile is a finished in-memory file, waiting for its commit.
type builtFile struct {
	rel   string
	pv    map[string]string
	data  []byte
	stats string
}

// Unspooled returns the estimated memory of the rows added since the last Spool (or commit): what
// Spool would encode.
func (w *Writer[T]) Unspooled() int64 { return w.bytes }

// Spool encodes the buffered rows as one row group per partition of the files this Writer builds in
// memory for its next commit, and releases them: after it returns the caller may reuse whatever the
// rows referenced. Seal then finishes the files; Writer.Commit does not take spooled rows (use Seal
// and Batch.Commit). Called by the Writer's goroutine.
func (w *Writer[T]) Spool() error {
	if len(w.rows) == 0 {
		return nil
	}
	parts, perm := order(&w.spec, w.rows)
	for _, part := range parts {
		var idx []int32
		if perm != nil {
			idx = perm[part.lo:part.hi]
		}
		f := w.spoolFor(part, idx)
		if err := f.pw.write(w.rows, part.lo, part.hi, idx); err != nil {
			return fmt.Errorf("lake %s: spool %s: %w", w.spec.Name, f.rel, err)
		}
		if err := f.pw.Flush(); err != nil { // ends the row group
			return fmt.Errorf("lake %s: spool %s: %w", w.spec.Name, f.rel, err)
		}
	}
	w.spooledRows += len(w.rows)
	clear(w.rows)
	w.rows = w.rows[:0]
	w.bytes = 0
	w.gen++
	return nil
}

// spoolFor returns the file being built for part's partition, starting it (named after its first
// row) if there is none.
func (w *Writer[T]) spoolFor(part partRange, idx []int32) *spoolFile[T] {
	for _, f := range w.spooled {
		if f.key == part.key {
			return f
		}
	}
	first := &w.rows[part.lo]
	if idx != nil {
		first = &w.rows[idx[0]]
	}
	dir, pv := w.spec.Partitioning.dir(part.key)
	f := &spoolFile[T]{key: part.key, pv: pv, rel: w.fileName(dir, first)}
	// No write buffer: the output is memory already, and a row group lands in it when Spool returns.
	f.pw = w.spec.encoding().writer(&f.buf, append(slices.Clip(w.pqOpts), parquet.WriteBufferSize(0)))
	w.spooled = append(w.spooled, f)
	return f
}

// spooledBytes is what the files being built hold so far (compressed row groups).
func (w *Writer[T]) spooledBytes() int64 {
	var n int64
	for _, f := range w.spooled {
		n += int64(f.buf.Len())
	}
	return n
}

// finishSpool spools what is left and closes the files being built (footers, statistics), handing
// them over for a Batch.
func (w *Writer[T]) finishSpool() ([]builtFile, int, error) {
	err := w.Spool()
	files, n := w.spooled, w.spooledRows
	w.spooled, w.spooledRows = nil, 0 // after an error too: those rows are gone, the Batch fails
	if err != nil {
		return nil, 0, err
	}
	built := make([]builtFile, 0, len(files))
	for _, f := range files {
		if err := f.pw.Close(); err != nil {
			return nil, 0, fmt.Errorf("lake %s: finish %s: %w", w.spec.Name, f.rel, err)
		}
		stats, err := fileStats(f.pw.File().Metadata(), w.stats)
		if err != nil {
			return nil, 0, fmt.Errorf("lake %s: finish %s: %w", w.spec.Name, f.rel, err)
		}
		built = append(built, builtFile{rel: f.rel, pv: f.pv, data: f.buf.Bytes(), stats: stats})
	}
	return built, n, nil
}

// putBuilt stores built files and returns their add actions; each is durable when it returns nil.
// On error it removes those it stored (they are not in the log: removing them only saves space).
func (w *Writer[T]) putBuilt(ctx context.Context, built []builtFile, now int64) ([]delta.Action, error) {
	adds := make([]delta.Action, 0, len(built))
	for _, f := range built {
		if err := w.lk.store.Put(ctx, w.table.Root()+f.rel, f.data); err != nil {
			w.removeFiles(ctx, adds)
			return nil, fmt.Errorf("write %s: %w", w.table.Root()+f.rel, err)
		}
		adds = append(adds, delta.Action{Add: &delta.Add{
			Path: delta.EscapePath(f.rel), PartitionValues: f.pv, Size: int64(len(f.data)), ModificationTime: now,
			DataChange: true, Stats: f.stats,
		}})
	}
	return adds, nil
}
