package httpsql

import (
	"fmt"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/sluice-project/sluice/internal/query"
)

// parquetBatch is how many rows are buffered per write; a row group is written every
// parquetRowGroup rows, so memory stays bounded while the file streams out.
const (
	parquetBatch    = 4096
	parquetRowGroup = 128 << 10
)

// parquetEncoder writes the result as one Parquet file (zstd), columns in query order, every column
// optional. Exact decimals, huge integers, intervals, UUIDs and nested values other than lists are
// written as strings.
type parquetEncoder struct {
	w       *flushWriter
	names   []string
	kinds   []query.Kind
	elems   []query.Kind
	pw      *parquet.GenericWriter[map[string]any]
	batch   []map[string]any
	inGroup int
}

// orderedGroup is a parquet group whose columns keep the query's order (parquet.Group sorts by name).
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	byName := map[string]parquet.Field{}
	for _, f := range g.Group.Fields() {
		byName[f.Name()] = f
	}
	out := make([]parquet.Field, len(g.order))
	for i, n := range g.order {
		out[i] = byName[n]
	}
	return out
}

func parquetNode(k query.Kind, elem *query.Column) parquet.Node {
	switch k {
	case query.KindBool:
		return parquet.Leaf(parquet.BooleanType)
	case query.KindInt8, query.KindInt16, query.KindInt32:
		return parquet.Int(32)
	case query.KindInt64:
		return parquet.Int(64)
	case query.KindFloat32:
		return parquet.Leaf(parquet.FloatType)
	case query.KindFloat64:
		return parquet.Leaf(parquet.DoubleType)
	case query.KindBlob:
		return parquet.Leaf(parquet.ByteArrayType)
	case query.KindDate:
		return parquet.Date()
	case query.KindTimestamp:
		return parquet.TimestampAdjusted(parquet.Microsecond, false)
	case query.KindTimestampTZ:
		return parquet.Timestamp(parquet.Microsecond)
	case query.KindList:
		ek := query.KindString
		if elem != nil && elem.Kind != query.KindList {
			ek = elem.Kind
		}
		return parquet.List(parquet.Optional(parquetNode(ek, nil)))
	}
	return parquet.String()
}

func (e *parquetEncoder) begin(cols []query.Column) error {
	e.names = uniqueNames(cols)
	g := parquet.Group{}
	for i, c := range cols {
		g[e.names[i]] = parquet.Optional(parquetNode(c.Kind, c.Elem))
		e.kinds = append(e.kinds, c.Kind)
		ek := query.KindString
		if c.Elem != nil && c.Elem.Kind != query.KindList {
			ek = c.Elem.Kind
		}
		e.elems = append(e.elems, ek)
	}
	schema := parquet.NewSchema("result", orderedGroup{Group: g, order: e.names})
	e.pw = parquet.NewGenericWriter[map[string]any](e.w, schema, parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}))
	return nil
}

// parquetValue converts a value from query.Rows into what the column's node takes.
func parquetValue(k query.Kind, v any) any {
	if v == nil {
		return nil
	}
	switch k {
	case query.KindBool, query.KindInt64, query.KindFloat64, query.KindBlob, query.KindTimestamp, query.KindTimestampTZ:
		return v
	case query.KindInt8, query.KindInt16, query.KindInt32:
		if n, ok := v.(int64); ok {
			return int32(n)
		}
	case query.KindFloat32:
		if f, ok := v.(float64); ok {
			return float32(f)
		}
	case query.KindDate:
		if t, ok := v.(time.Time); ok {
			return t
		}
	}
	if s, ok := v.(string); ok {
		return s
	}
	return query.ValueText(v)
}

func (e *parquetEncoder) row(vals []any) error {
	m := make(map[string]any, len(vals))
	for i, v := range vals {
		if e.kinds[i] == query.KindList && v != nil {
			l, _ := v.([]any)
			out := make([]any, len(l))
			for j, x := range l {
				out[j] = parquetValue(e.elems[i], x)
			}
			m[e.names[i]] = out
			continue
		}
		m[e.names[i]] = parquetValue(e.kinds[i], v)
	}
	e.batch = append(e.batch, m)
	if len(e.batch) >= parquetBatch {
		return e.flushBatch()
	}
	return nil
}

func (e *parquetEncoder) flushBatch() error {
	if len(e.batch) == 0 {
		return nil
	}
	if _, err := e.pw.Write(e.batch); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	e.inGroup += len(e.batch)
	e.batch = e.batch[:0]
	if e.inGroup >= parquetRowGroup {
		e.inGroup = 0
		if err := e.pw.Flush(); err != nil {
			return fmt.Errorf("parquet: %w", err)
		}
	}
	return nil
}

func (e *parquetEncoder) end(bool, int, time.Duration) error {
	if err := e.flushBatch(); err != nil {
		return err
	}
	if err := e.pw.Close(); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return e.w.flush()
}

// fail leaves the file without its footer: readers refuse it rather than take a partial result.
func (e *parquetEncoder) fail(error) { _ = e.w.flush() }
