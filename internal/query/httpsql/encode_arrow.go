package httpsql

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-project/sluice/internal/query"
)

// arrowBatch is the number of rows per Arrow record batch.
const arrowBatch = 64 << 10

// arrowEncoder writes the result as an Arrow IPC stream (application/vnd.apache.arrow.stream), one
// record batch per arrowBatch rows. Exact decimals, huge integers, intervals and UUIDs are strings;
// timestamps are microseconds (UTC for TIMESTAMP WITH TIME ZONE).
type arrowEncoder struct {
	w     *flushWriter
	kinds []query.Kind
	b     *array.RecordBuilder
	iw    *ipc.Writer
	n     int
}

func arrowType(k query.Kind, elem *query.Column) arrow.DataType {
	switch k {
	case query.KindBool:
		return arrow.FixedWidthTypes.Boolean
	case query.KindInt8:
		return arrow.PrimitiveTypes.Int8
	case query.KindInt16:
		return arrow.PrimitiveTypes.Int16
	case query.KindInt32:
		return arrow.PrimitiveTypes.Int32
	case query.KindInt64:
		return arrow.PrimitiveTypes.Int64
	case query.KindFloat32:
		return arrow.PrimitiveTypes.Float32
	case query.KindFloat64:
		return arrow.PrimitiveTypes.Float64
	case query.KindBlob:
		return arrow.BinaryTypes.Binary
	case query.KindDate:
		return arrow.FixedWidthTypes.Date32
	case query.KindTimestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case query.KindTimestampTZ:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case query.KindList:
		ek, ee := query.KindString, (*query.Column)(nil)
		if elem != nil {
			ek, ee = elem.Kind, elem.Elem
		}
		return arrow.ListOf(arrowType(ek, ee))
	}
	return arrow.BinaryTypes.String
}

func (e *arrowEncoder) begin(cols []query.Column) error {
	names := uniqueNames(cols)
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: names[i], Type: arrowType(c.Kind, c.Elem), Nullable: true}
		e.kinds = append(e.kinds, c.Kind)
	}
	schema := arrow.NewSchema(fields, nil)
	e.b = array.NewRecordBuilder(memory.DefaultAllocator, schema)
	e.iw = ipc.NewWriter(e.w, ipc.WithSchema(schema))
	return nil
}

// appendArrow appends v (a value from query.Rows) to a builder of the type arrowType gave.
func appendArrow(b array.Builder, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch bb := b.(type) {
	case *array.BooleanBuilder:
		bb.Append(v.(bool))
	case *array.Int8Builder:
		bb.Append(int8(v.(int64)))
	case *array.Int16Builder:
		bb.Append(int16(v.(int64)))
	case *array.Int32Builder:
		bb.Append(int32(v.(int64)))
	case *array.Int64Builder:
		bb.Append(v.(int64))
	case *array.Float32Builder:
		bb.Append(float32(v.(float64)))
	case *array.Float64Builder:
		bb.Append(v.(float64))
	case *array.BinaryBuilder:
		if x, ok := v.([]byte); ok {
			bb.Append(x)
		} else {
			bb.AppendString(query.ValueText(v))
		}
	case *array.StringBuilder:
		if x, ok := v.(string); ok {
			bb.Append(x)
		} else {
			bb.Append(query.ValueText(v))
		}
	case *array.Date32Builder:
		bb.Append(arrow.Date32FromTime(v.(time.Time)))
	case *array.TimestampBuilder:
		bb.Append(arrow.Timestamp(v.(time.Time).UnixMicro()))
	case *array.ListBuilder:
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("arrow: list column holds %T", v)
		}
		bb.Append(true)
		for _, x := range l {
			if err := appendArrow(bb.ValueBuilder(), x); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("arrow: no builder for %T", b)
	}
	return nil
}

func (e *arrowEncoder) row(vals []any) (err error) {
	defer func() {
		if r := recover(); r != nil { // a value of an unexpected Go type: report, do not crash
			err = fmt.Errorf("arrow: %v", r)
		}
	}()
	for i, v := range vals {
		if err := appendArrow(e.b.Field(i), v); err != nil {
			return err
		}
	}
	e.n++
	if e.n >= arrowBatch {
		return e.flushBatch()
	}
	return nil
}

func (e *arrowEncoder) flushBatch() error {
	rec := e.b.NewRecordBatch()
	defer rec.Release()
	e.n = 0
	if err := e.iw.Write(rec); err != nil {
		return fmt.Errorf("arrow: %w", err)
	}
	return nil
}

func (e *arrowEncoder) end(bool, int, time.Duration) error {
	if e.n > 0 {
		if err := e.flushBatch(); err != nil {
			return err
		}
	}
	if err := e.iw.Close(); err != nil {
		return fmt.Errorf("arrow: %w", err)
	}
	e.b.Release()
	return e.w.flush()
}

// fail ends the stream without its end-of-stream marker.
func (e *arrowEncoder) fail(error) {
	e.b.Release()
	_ = e.w.flush()
}
