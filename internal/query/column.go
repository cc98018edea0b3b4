package query

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Kind is a result column's type, reduced to what the output formats (JSON, CSV, Parquet, Arrow,
// the PostgreSQL protocol) need to know.
type Kind int

// Kinds. Values of each kind, as Rows.Next returns them after Plain: KindBool bool; KindInt* int64;
// KindFloat* float64; KindDecimal, KindHugeInt: string (exact digits); KindString, KindJSON,
// KindInterval, KindUUID, KindOther: string; KindBlob []byte; KindDate, KindTime, KindTimestamp,
// KindTimestampTZ: time.Time (UTC); KindList []any of the element kind. NULL is nil everywhere.
const (
	KindOther Kind = iota
	KindBool
	KindInt8
	KindInt16
	KindInt32
	KindInt64
	KindFloat32
	KindFloat64
	KindDecimal
	KindHugeInt
	KindString
	KindJSON
	KindBlob
	KindDate
	KindTime
	KindTimestamp
	KindTimestampTZ
	KindInterval
	KindUUID
	KindList
)

// Column is one result column.
type Column struct {
	Name string
	Type string // DuckDB's type name, e.g. "TIMESTAMP WITH TIME ZONE", "VARCHAR[]"
	Kind Kind
	Elem *Column // KindList: the element type
}

// columnOf describes a prepared statement's column from its DuckDB type.
func columnOf(name string, ti duckdb.TypeInfo) Column {
	c := Column{Name: name, Kind: kindOf(ti)}
	c.Type = typeName(ti)
	if c.Kind == KindList {
		var child duckdb.TypeInfo
		switch d := ti.Details().(type) {
		case *duckdb.ListDetails:
			child = d.Child
		case *duckdb.ArrayDetails:
			child = d.Child
		}
		if child != nil {
			e := columnOf("element", child)
			c.Elem = &e
		} else {
			c.Elem = &Column{Name: "element", Type: "VARCHAR", Kind: KindString}
		}
	}
	return c
}

func kindOf(ti duckdb.TypeInfo) Kind { return kindOfType(ti.InternalType(), ti.Alias()) }

func kindOfType(t duckdb.Type, alias string) Kind {
	if alias == "JSON" {
		return KindJSON
	}
	switch t {
	case duckdb.TYPE_BOOLEAN:
		return KindBool
	case duckdb.TYPE_TINYINT:
		return KindInt8
	case duckdb.TYPE_SMALLINT, duckdb.TYPE_UTINYINT:
		return KindInt16
	case duckdb.TYPE_INTEGER, duckdb.TYPE_USMALLINT:
		return KindInt32
	case duckdb.TYPE_BIGINT, duckdb.TYPE_UINTEGER:
		return KindInt64
	case duckdb.TYPE_UBIGINT, duckdb.TYPE_HUGEINT, duckdb.TYPE_UHUGEINT, duckdb.TYPE_BIGNUM:
		return KindHugeInt
	case duckdb.TYPE_FLOAT:
		return KindFloat32
	case duckdb.TYPE_DOUBLE:
		return KindFloat64
	case duckdb.TYPE_DECIMAL:
		return KindDecimal
	case duckdb.TYPE_VARCHAR, duckdb.TYPE_ENUM:
		return KindString
	case duckdb.TYPE_BLOB:
		return KindBlob
	case duckdb.TYPE_DATE:
		return KindDate
	case duckdb.TYPE_TIME, duckdb.TYPE_TIME_TZ:
		return KindTime
	case duckdb.TYPE_TIMESTAMP, duckdb.TYPE_TIMESTAMP_S, duckdb.TYPE_TIMESTAMP_MS, duckdb.TYPE_TIMESTAMP_NS:
		return KindTimestamp
	case duckdb.TYPE_TIMESTAMP_TZ:
		return KindTimestampTZ
	case duckdb.TYPE_INTERVAL:
		return KindInterval
	case duckdb.TYPE_UUID:
		return KindUUID
	case duckdb.TYPE_LIST, duckdb.TYPE_ARRAY:
		return KindList
	case duckdb.TYPE_INVALID, duckdb.TYPE_SQLNULL, duckdb.TYPE_ANY:
		return KindString // an untyped parameter or NULL: sent as text
	}
	return KindOther
}

var typeNames = map[duckdb.Type]string{
	duckdb.TYPE_BOOLEAN: "BOOLEAN", duckdb.TYPE_TINYINT: "TINYINT", duckdb.TYPE_SMALLINT: "SMALLINT",
	duckdb.TYPE_INTEGER: "INTEGER", duckdb.TYPE_BIGINT: "BIGINT", duckdb.TYPE_UTINYINT: "UTINYINT",
	duckdb.TYPE_USMALLINT: "USMALLINT", duckdb.TYPE_UINTEGER: "UINTEGER", duckdb.TYPE_UBIGINT: "UBIGINT",
	duckdb.TYPE_HUGEINT: "HUGEINT", duckdb.TYPE_UHUGEINT: "UHUGEINT", duckdb.TYPE_BIGNUM: "BIGNUM",
	duckdb.TYPE_FLOAT: "FLOAT", duckdb.TYPE_DOUBLE: "DOUBLE", duckdb.TYPE_VARCHAR: "VARCHAR",
	duckdb.TYPE_ENUM: "ENUM", duckdb.TYPE_BLOB: "BLOB", duckdb.TYPE_DATE: "DATE", duckdb.TYPE_TIME: "TIME",
	duckdb.TYPE_TIME_TZ: "TIME WITH TIME ZONE", duckdb.TYPE_TIMESTAMP: "TIMESTAMP",
	duckdb.TYPE_TIMESTAMP_S: "TIMESTAMP_S", duckdb.TYPE_TIMESTAMP_MS: "TIMESTAMP_MS",
	duckdb.TYPE_TIMESTAMP_NS: "TIMESTAMP_NS", duckdb.TYPE_TIMESTAMP_TZ: "TIMESTAMP WITH TIME ZONE",
	duckdb.TYPE_INTERVAL: "INTERVAL", duckdb.TYPE_UUID: "UUID", duckdb.TYPE_STRUCT: "STRUCT",
	duckdb.TYPE_MAP: "MAP", duckdb.TYPE_UNION: "UNION", duckdb.TYPE_BIT: "BIT", duckdb.TYPE_SQLNULL: "NULL",
	duckdb.TYPE_INVALID: "UNKNOWN",
}

func typeName(ti duckdb.TypeInfo) string {
	if a := ti.Alias(); a != "" {
		return a
	}
	switch d := ti.Details().(type) {
	case *duckdb.DecimalDetails:
		return fmt.Sprintf("DECIMAL(%d,%d)", d.Width, d.Scale)
	case *duckdb.ListDetails:
		return typeName(d.Child) + "[]"
	case *duckdb.ArrayDetails:
		return fmt.Sprintf("%s[%d]", typeName(d.Child), d.Size)
	}
	if n, ok := typeNames[ti.InternalType()]; ok {
		return n
	}
	return "UNKNOWN"
}

// Plain converts a value as the DuckDB driver returns it into the plain Go value its column's kind
// promises (see Kind): exact numbers that do not fit 64 bits become decimal strings, intervals,
// UUIDs, structs and maps become text. Timestamps are returned in UTC.
func Plain(v any) any {
	switch x := v.(type) {
	case nil, bool, string, float64, int64:
		return x
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return new(big.Int).SetUint64(x).String()
	case int:
		return int64(x)
	case float32:
		return float64(x)
	case time.Time:
		return x.UTC()
	case []byte:
		return x
	case *big.Int:
		if x == nil {
			return nil
		}
		return x.String()
	case duckdb.Decimal:
		return decimalString(x)
	case duckdb.Interval:
		return intervalString(x)
	case duckdb.UUID:
		return x.String()
	case *duckdb.UUID:
		if x == nil {
			return nil
		}
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Plain(e)
		}
		return out
	}
	return textOf(v)
}

// textOf renders values without a plain Go form (structs, maps, unions) as DuckDB-like text.
func textOf(v any) string {
	switch x := v.(type) {
	case map[string]any:
		var b strings.Builder
		b.WriteByte('{')
		first := true
		for k, e := range x {
			if !first {
				b.WriteString(", ")
			}
			first = false
			fmt.Fprintf(&b, "'%s': %s", k, valueText(Plain(e)))
		}
		b.WriteByte('}')
		return b.String()
	case duckdb.OrderedMap:
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range x.Keys() {
			if i > 0 {
				b.WriteString(", ")
			}
			val, _ := x.Get(k)
			fmt.Fprintf(&b, "%s=%s", valueText(Plain(k)), valueText(Plain(val)))
		}
		b.WriteByte('}')
		return b.String()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// valueText renders a plain value as text (CSV cells, the PostgreSQL text format of odd types).
func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case time.Time:
		return x.Format("2006-01-02 15:04:05.999999Z07:00")
	case []byte:
		return `\x` + hex.EncodeToString(x)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Sprint(x)
		}
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = valueText(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// ValueText renders a value returned by Rows.Next as text, the way the CSV and table outputs show it.
func ValueText(v any) string { return valueText(v) }

func decimalString(d duckdb.Decimal) string {
	if d.Value == nil {
		return "0"
	}
	s := new(big.Int).Abs(d.Value).String()
	neg := d.Value.Sign() < 0
	if d.Scale > 0 {
		sc := int(d.Scale)
		if len(s) <= sc {
			s = strings.Repeat("0", sc-len(s)+1) + s
		}
		s = s[:len(s)-sc] + "." + s[len(s)-sc:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func intervalString(iv duckdb.Interval) string {
	var parts []string
	if iv.Months != 0 {
		y, m := iv.Months/12, iv.Months%12
		if y != 0 {
			parts = append(parts, fmt.Sprintf("%d years", y))
		}
		if m != 0 {
			parts = append(parts, fmt.Sprintf("%d mons", m))
		}
	}
	if iv.Days != 0 {
		parts = append(parts, fmt.Sprintf("%d days", iv.Days))
	}
	if iv.Micros != 0 || len(parts) == 0 {
		us := iv.Micros
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		h, rem := us/3_600_000_000, us%3_600_000_000
		m, rem := rem/60_000_000, rem%60_000_000
		s, frac := rem/1_000_000, rem%1_000_000
		t := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
		if frac != 0 {
			t += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, " ")
}
