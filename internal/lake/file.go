package lake

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// pageBytes is the target size of a Parquet data page before compression. Larger pages compress the
// payload column better (zstd finds more repeats) at the cost of coarser page-level skipping.
const pageBytes = 1 << 20

// codec returns the Parquet compression codec cfg asks for; auto is the table's own zstd level,
// used when cfg's level is "auto".
func codec(cfg Config, auto string) compress.Codec {
	switch cfg.Compression {
	case "snappy":
		return &snappy.Codec{}
	case "none":
		return &parquet.Uncompressed
	}
	level := zstd.SpeedDefault
	name := cfg.CompressionLevel
	if name == "auto" {
		name = auto
	}
	switch name {
	case "fastest":
		level = zstd.SpeedFastest
	case "better":
		level = zstd.SpeedBetterCompression
	case "best":
		level = zstd.SpeedBestCompression
	}
	return &zstdCodec{level: level}
}

// writerOptions are the Parquet writer options of a table's files.
func writerOptions[T any](spec Spec[T], schema *parquet.Schema, cfg Config) []parquet.WriterOption {
	opts := []parquet.WriterOption{
		schema,
		parquet.Compression(codec(cfg, spec.Level)),
		parquet.DataPageVersion(1), // the protocol's advice for tables read beyond Delta connectors
		parquet.PageBufferSize(pageBytes),
		parquet.MaxRowsPerRowGroup(int64(cfg.RowGroupRows)),
		parquet.CreatedBy("sluice", "", ""),
	}
	if len(spec.SortedBy) > 0 {
		cols := make([]parquet.SortingColumn, len(spec.SortedBy))
		for i, c := range spec.SortedBy {
			cols[i] = parquet.Ascending(c)
		}
		opts = append(opts, parquet.SortingWriterConfig(parquet.SortingColumns(cols...)))
	}
	// Binary columns (payloads) get no min/max: useless for filtering, and a large payload would be
	// copied into the footer and the page index.
	for _, f := range schema.Fields() {
		if f.Leaf() && f.Type().Kind() == parquet.ByteArray {
			if lt := f.Type().LogicalType(); lt == nil || lt.Value == nil {
				opts = append(opts, parquet.SkipPageBounds(f.Name()), parquet.SkipPageStatistics(f.Name()))
			}
		}
	}
	return opts
}

// countingWriter counts what goes through to the store.
type countingWriter struct {
	w delta.FileWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileName is the path, relative to the table, of a new data file in partition directory dir whose
// first row is first: part-<Seq, 20 digits>-<uuid>.parquet.
func (w *Writer[T]) fileName(dir string, first *T) string {
	return fmt.Sprintf("%spart-%020d-%s.parquet", dir, w.spec.Seq(first), uuid.NewString())
}

// chunkRows is how many rows are gathered (through the permutation) per Parquet write.
const chunkRows = 4096

// writeFile writes one partition as one data file in the table's directory dir and returns its add
// action: the rows rows[i] for i in idx, in that order, or rows[lo:hi] as they are when idx is nil.
// The file is durable when writeFile returns nil.
func (w *Writer[T]) writeFile(ctx context.Context, dir string, pv map[string]string, rows []T, lo, hi int, idx []int32, now int64) (*delta.Add, error) {
	first := &rows[lo]
	if idx != nil {
		first = &rows[idx[0]]
	}
	rel := w.fileName(dir, first)
	key := w.table.Root() + rel
	fw, err := w.lk.store.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	cw := &countingWriter{w: fw}
	// A new writer per file: GenericWriter.Reset leaves the footer's column paths empty.
	pw := w.spec.encoding().writer(cw, w.pqOpts)
	if err := writeGroups(pw, w.spec.encoding(), w.pqOpts, w.cfg.RowGroupRows, runtime.GOMAXPROCS(0), rows, lo, hi, idx); err != nil {
		fw.Abort()
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	if err := pw.Close(); err != nil {
		fw.Abort()
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	if err := fw.Close(); err != nil {
		return nil, err
	}
	stats, err := fileStats(pw.File().Metadata(), w.stats)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	return &delta.Add{
		Path: delta.EscapePath(rel), PartitionValues: pv, Size: cw.n, ModificationTime: now,
		DataChange: true, Stats: stats,
	}, nil
}

// Row groups in parallel: a file of more rows than one row group (lake.row_group_rows) is cut into
// runs of whole row groups, one per processor, and each run is encoded (the rows converted, the pages
// encoded and compressed) on a goroutine of its own into an in-memory file; the file is then
// assembled in order by parquet-go's WriteRowGroup, which copies each row group's compressed column
// chunks verbatim (its "L0" copy path: same schema, codec, encodings and page version). The file
// holds the row groups, pages and bytes writing them one after another gives
// (TestWriteGroupsSameBytes). One writer per run, not per row group: a new writer grows its column
// buffers from nothing, which for every group of a million-row file allocated ten times what one
// writer does. The commit of a million readings/ rows is most of a decoder's commit, and the last
// one before a drain is on the critical path alone.

// writeGroups writes rows[lo:hi], or the rows rows[i] for i in idx, to out (a writer of enc with
// opts), per rows to a row group as opts says, encoding runs of row groups on up to workers
// goroutines when there are several groups.
func writeGroups[T any](out rowWriter[T], enc encoding[T], opts []parquet.WriterOption, per, workers int, rows []T, lo, hi int, idx []int32) error {
	n := hi - lo
	if idx != nil {
		n = len(idx)
	}
	groups := 1
	if per > 0 {
		groups = (n + per - 1) / per
	}
	workers = min(workers, groups)
	if workers <= 1 {
		return out.write(rows, lo, hi, idx)
	}
	type run struct {
		data []byte
		err  error
	}
	runs := make([]run, workers)
	opts = append(slices.Clip(opts), parquet.WriteBufferSize(0))
	var wg sync.WaitGroup
	for r := range runs {
		wg.Go(func() {
			a, b := r*groups/workers*per, min((r+1)*groups/workers*per, n)
			var buf bytes.Buffer
			pw := enc.writer(&buf, opts)
			var err error
			if idx != nil {
				err = pw.write(rows, 0, 0, idx[a:b])
			} else {
				err = pw.write(rows, lo+a, lo+b, nil)
			}
			if err == nil {
				err = pw.Close()
			}
			runs[r].data, runs[r].err = buf.Bytes(), err
		})
	}
	wg.Wait() // assembling is a copy of compressed bytes: nothing to gain from starting it earlier
	for r := range runs {
		if err := runs[r].err; err != nil {
			return fmt.Errorf("row groups %d/%d: %w", r+1, workers, err)
		}
		data := runs[r].data
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("row groups %d/%d: %w", r+1, workers, err)
		}
		for _, rg := range f.RowGroups() {
			if _, err := out.WriteRowGroup(rg); err != nil {
				return fmt.Errorf("row groups %d/%d: %w", r+1, workers, err)
			}
		}
		runs[r].data = nil // the file has its copy
	}
	return nil
}

// rowWriter writes rows of type T into one Parquet file.
type rowWriter[T any] interface {
	// write writes rows[lo:hi], or the rows rows[i] for i in idx, in that order.
	write(rows []T, lo, hi int, idx []int32) error
	// WriteRowGroup writes a row group of a file of the same schema and options.
	WriteRowGroup(parquet.RowGroup) (int64, error)
	Flush() error // ends the row group
	Close() error // writes the footer
	File() parquet.FileView
}

// encoding is how a table's buffered rows become its files' rows: the schema of the files, and a
// writer of them. A table whose buffered type is its file type writes rows as they are (direct); one
// that buffers a compact form converts them chunk by chunk (through).
type encoding[T any] interface {
	schema() *parquet.Schema
	writer(out io.Writer, opts []parquet.WriterOption) rowWriter[T]
}

type direct[T any] struct{}

func (direct[T]) schema() *parquet.Schema { var zero T; return parquet.SchemaOf(zero) }

func (direct[T]) writer(out io.Writer, opts []parquet.WriterOption) rowWriter[T] {
	return &directWriter[T]{GenericWriter: parquet.NewGenericWriter[T](out, opts...)}
}

// directWriter writes rows of the file's own type; rows reached through a permutation are gathered
// chunkRows at a time.
type directWriter[T any] struct {
	*parquet.GenericWriter[T]
	chunk []T
}

func (d *directWriter[T]) write(rows []T, lo, hi int, idx []int32) error {
	if idx == nil {
		_, err := d.Write(rows[lo:hi])
		return err
	}
	if d.chunk == nil {
		d.chunk = make([]T, chunkRows)
	}
	c := d.chunk
	defer clear(c) // do not keep the caller's memory alive
	for len(idx) > 0 {
		n := min(len(idx), chunkRows)
		for i, j := range idx[:n] {
			c[i] = rows[j]
		}
		if _, err := d.Write(c[:n]); err != nil {
			return err
		}
		idx = idx[n:]
	}
	return nil
}

// through is the encoding of a table that buffers rows of type T and writes files of rows of type F
// (the schema: F's parquet tags), converting chunkRows rows at a time with conv.
type through[T, F any] struct{ conv func(src *T, dst *F) }

func (through[T, F]) schema() *parquet.Schema { var zero F; return parquet.SchemaOf(zero) }

func (t through[T, F]) writer(out io.Writer, opts []parquet.WriterOption) rowWriter[T] {
	return &throughWriter[T, F]{GenericWriter: parquet.NewGenericWriter[F](out, opts...), conv: t.conv}
}

type throughWriter[T, F any] struct {
	*parquet.GenericWriter[F]
	conv  func(src *T, dst *F)
	chunk []F
}

func (t *throughWriter[T, F]) write(rows []T, lo, hi int, idx []int32) error {
	if t.chunk == nil {
		t.chunk = make([]F, chunkRows)
	}
	c := t.chunk
	defer clear(c) // do not keep the caller's memory alive
	total := hi - lo
	if idx != nil {
		total = len(idx)
	}
	for done := 0; done < total; {
		n := min(total-done, chunkRows)
		for i := range n {
			j := lo + done + i
			if idx != nil {
				j = int(idx[done+i])
			}
			t.conv(&rows[j], &c[i])
		}
		if _, err := t.Write(c[:n]); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// fileStats computes a data file's Delta statistics from its Parquet footer: numRecords, and per
// top-level column the null count and, where meaningful, min and max ("Per-file Statistics").
func fileStats(md *format.FileMetaData, cols []statColumn) (string, error) {
	s := delta.Stats{NumRecords: md.NumRows, MinValues: map[string]any{}, MaxValues: map[string]any{}, NullCount: map[string]int64{}}
	type bound struct {
		min, max []byte
		ok       bool // false once a row group lacked bounds
	}
	bounds := make([]bound, len(cols))
	for i := range bounds {
		bounds[i].ok = true
	}
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.name] = i
	}
	for _, rg := range md.RowGroups {
		for _, cc := range rg.Columns {
			path := cc.MetaData.PathInSchema
			if len(path) != 1 {
				continue // nested (flags): no statistics
			}
			i, ok := index[path[0]]
			if !ok || cols[i].kind == statNone {
				continue
			}
			st := cc.MetaData.Statistics
			s.NullCount[cols[i].name] += st.NullCount
			b := &bounds[i]
			nonNull := cc.MetaData.NumValues - st.NullCount
			if nonNull == 0 {
				continue // all null in this group: no bounds to merge
			}
			if st.MinValue == nil || st.MaxValue == nil {
				b.ok = false
				continue
			}
			if b.min == nil || less(cols[i].kind, st.MinValue, b.min) {
				b.min = st.MinValue
			}
			if b.max == nil || less(cols[i].kind, b.max, st.MaxValue) {
				b.max = st.MaxValue
			}
		}
	}
	for i, c := range cols {
		b := bounds[i]
		if !b.ok || b.min == nil || c.kind == statNulls {
			continue
		}
		lo, hi, ok := statValues(c.kind, b.min, b.max)
		if !ok {
			continue
		}
		s.MinValues[c.name] = lo
		if hi != nil {
			s.MaxValues[c.name] = hi
		}
	}
	return s.JSON()
}

// less orders two plain-encoded statistics values of a column kind.
func less(k statKind, a, b []byte) bool {
	switch k {
	case statInt64, statTimestamp:
		if len(a) == 8 && len(b) == 8 {
			return int64(binary.LittleEndian.Uint64(a)) < int64(binary.LittleEndian.Uint64(b))
		}
	case statInt32:
		if len(a) == 4 && len(b) == 4 {
			return int32(binary.LittleEndian.Uint32(a)) < int32(binary.LittleEndian.Uint32(b))
		}
	case statDouble:
		if len(a) == 8 && len(b) == 8 {
			return math.Float64frombits(binary.LittleEndian.Uint64(a)) < math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	}
	return bytes.Compare(a, b) < 0
}

// statValues turns a column's bounds into JSON values; ok is false when they cannot be written
// (NaN or infinite doubles, invalid UTF-8); hi is nil when only the minimum can be given (a string
// longer than the statistics prefix).
func statValues(k statKind, lo, hi []byte) (any, any, bool) {
	switch k {
	case statInt64:
		return int64(binary.LittleEndian.Uint64(lo)), int64(binary.LittleEndian.Uint64(hi)), len(lo) == 8 && len(hi) == 8
	case statInt32:
		return int32(binary.LittleEndian.Uint32(lo)), int32(binary.LittleEndian.Uint32(hi)), len(lo) == 4 && len(hi) == 4
	case statTimestamp:
		if len(lo) != 8 || len(hi) != 8 {
			return nil, nil, false
		}
		return delta.StatsTimestamp(int64(binary.LittleEndian.Uint64(lo))), delta.StatsTimestamp(int64(binary.LittleEndian.Uint64(hi))), true
	case statDouble:
		if len(lo) != 8 || len(hi) != 8 {
			return nil, nil, false
		}
		a, b := math.Float64frombits(binary.LittleEndian.Uint64(lo)), math.Float64frombits(binary.LittleEndian.Uint64(hi))
		if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
			return nil, nil, false
		}
		return a, b, true
	case statString:
		if !utf8.Valid(lo) || !utf8.Valid(hi) {
			return nil, nil, false
		}
		var max any
		if utf8.RuneCount(hi) <= delta.StringStatsPrefix {
			max = string(hi)
		}
		return truncateRunes(lo, delta.StringStatsPrefix), max, true
	}
	return nil, nil, false
}

func truncateRunes(b []byte, n int) string {
	for i := range string(b) {
		if n == 0 {
			return string(b[:i])
		}
		n--
	}
	return string(b)
}

var _ io.Writer = (*countingWriter)(nil)
