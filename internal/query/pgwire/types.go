package pgwire

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	wire "github.com/jeroenrinzema/psql-wire"

	"github.com/sluice-project/sluice/internal/query"
)

// oidOf maps a result column to the PostgreSQL type clients see. Kinds without an exact PostgreSQL
// twin (intervals, UUIDs, times, structs, maps) are sent as text in DuckDB's rendering.
func oidOf(c query.Column) uint32 {
	switch c.Kind {
	case query.KindBool:
		return pgtype.BoolOID
	case query.KindInt8, query.KindInt16:
		return pgtype.Int2OID
	case query.KindInt32:
		return pgtype.Int4OID
	case query.KindInt64:
		return pgtype.Int8OID
	case query.KindFloat32:
		return pgtype.Float4OID
	case query.KindFloat64:
		return pgtype.Float8OID
	case query.KindDecimal, query.KindHugeInt:
		return pgtype.NumericOID
	case query.KindJSON:
		return pgtype.JSONOID
	case query.KindBlob:
		return pgtype.ByteaOID
	case query.KindDate:
		return pgtype.DateOID
	case query.KindTimestamp:
		return pgtype.TimestampOID
	case query.KindTimestampTZ:
		return pgtype.TimestamptzOID
	case query.KindList:
		if c.Elem == nil {
			return pgtype.TextArrayOID
		}
		switch c.Elem.Kind {
		case query.KindBool:
			return pgtype.BoolArrayOID
		case query.KindInt8, query.KindInt16, query.KindInt32, query.KindInt64:
			return pgtype.Int8ArrayOID
		case query.KindFloat32, query.KindFloat64:
			return pgtype.Float8ArrayOID
		case query.KindTimestampTZ:
			return pgtype.TimestamptzArrayOID
		}
		return pgtype.TextArrayOID
	}
	return pgtype.TextOID
}

func columnsOf(cols []query.Column) wire.Columns {
	out := make(wire.Columns, len(cols))
	for i, c := range cols {
		out[i] = wire.Column{Name: c.Name, Oid: oidOf(c), Width: -1, AttrNo: int16(i + 1)}
	}
	return out
}

// encodable converts a value from query.Rows into one pgtype encodes for the column's OID.
func encodable(oid uint32, v any) any {
	if v == nil {
		return nil
	}
	switch oid {
	case pgtype.TextOID, pgtype.JSONOID:
		if s, ok := v.(string); ok {
			return s
		}
		return query.ValueText(v)
	case pgtype.NumericOID:
		var n pgtype.Numeric
		s, ok := v.(string)
		if !ok {
			s = query.ValueText(v)
		}
		if err := n.Scan(s); err != nil {
			return nil
		}
		return n
	case pgtype.Int2OID:
		if n, ok := v.(int64); ok {
			return int16(n)
		}
	case pgtype.Int4OID:
		if n, ok := v.(int64); ok {
			return int32(n)
		}
	case pgtype.Float4OID:
		if f, ok := v.(float64); ok {
			return float32(f)
		}
	case pgtype.TimestampOID:
		if t, ok := v.(time.Time); ok {
			return pgtype.Timestamp{Time: t.UTC(), Valid: true}
		}
	case pgtype.TextArrayOID:
		l, _ := v.([]any)
		out := make([]*string, len(l))
		for i, e := range l {
			if e != nil {
				s, ok := e.(string)
				if !ok {
					s = query.ValueText(e)
				}
				out[i] = &s
			}
		}
		return out
	case pgtype.Int8ArrayOID:
		l, _ := v.([]any)
		out := make([]*int64, len(l))
		for i, e := range l {
			if n, ok := e.(int64); ok {
				out[i] = &n
			}
		}
		return out
	case pgtype.Float8ArrayOID:
		l, _ := v.([]any)
		out := make([]*float64, len(l))
		for i, e := range l {
			if f, ok := e.(float64); ok {
				out[i] = &f
			}
		}
		return out
	case pgtype.BoolArrayOID:
		l, _ := v.([]any)
		out := make([]*bool, len(l))
		for i, e := range l {
			if b, ok := e.(bool); ok {
				out[i] = &b
			}
		}
		return out
	case pgtype.TimestamptzArrayOID:
		l, _ := v.([]any)
		out := make([]*time.Time, len(l))
		for i, e := range l {
			if t, ok := e.(time.Time); ok {
				out[i] = &t
			}
		}
		return out
	}
	return v
}

// paramOID is the type announced to clients for a statement parameter.
func paramOID(c query.Column) uint32 {
	if c.Kind == query.KindList || c.Kind == query.KindJSON {
		return pgtype.TextOID
	}
	return oidOf(c)
}

// argOf decodes a bound parameter sent for the announced oid into a value DuckDB binds.
func argOf(p wire.Parameter, oid uint32) (any, error) {
	if p.Value() == nil {
		return nil, nil
	}
	if p.Format() == wire.TextFormat && (oid == pgtype.TextOID || oid == 0) {
		return string(p.Value()), nil
	}
	v, err := p.Scan(oid)
	if err != nil {
		if p.Format() == wire.TextFormat {
			return string(p.Value()), nil // let DuckDB cast the text
		}
		return nil, fmt.Errorf("parameter of type %d: %w", oid, err)
	}
	switch x := v.(type) {
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return nil, fmt.Errorf("numeric parameter: %v", err)
		}
		if x.Exp >= 0 && x.Int != nil && x.Int.IsInt64() && f.Float64 == math.Trunc(f.Float64) {
			return strconv.ParseInt(strconv.FormatFloat(f.Float64, 'f', 0, 64), 10, 64)
		}
		return f.Float64, nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case time.Time:
		return x, nil
	}
	return v, nil
}

// timestamptzCodec writes timestamps with time zone in text as PostgreSQL does ("… 10:00:01+00";
// pgtype writes "…Z", which psql shows as is and some drivers do not parse). Binary is unchanged.
type timestamptzCodec struct{ pgtype.TimestamptzCodec }

func (c *timestamptzCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if format == pgtype.TextFormatCode {
		if _, ok := value.(time.Time); ok {
			return textTimestamptz{}
		}
	}
	return c.TimestamptzCodec.PlanEncode(m, oid, format, value)
}

type textTimestamptz struct{}

func (textTimestamptz) Encode(value any, buf []byte) ([]byte, error) {
	t := value.(time.Time).UTC()
	buf = t.AppendFormat(buf, "2006-01-02 15:04:05.999999")
	return append(buf, "+00"...), nil
}

// extendTypes installs the codecs above in every session's type map.
func extendTypes(m *pgtype.Map) {
	m.RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID, Codec: &timestamptzCodec{}})
}
