package lake

import (
	"cmp"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// Partitioning is how a table's files are split into hive-style directories by a row's time.
type Partitioning int

// Partitionings.
const (
	Unpartitioned Partitioning = iota // files at the table's root
	ByDate                            // date=YYYY-MM-DD/ (partition column date, Delta type date)
	ByHour                            // date=YYYY-MM-DD/hour=HH/ (and hour, Delta type integer)
)

// Spec says how a table of rows of type T is named, partitioned and sorted. The file schema (column
// names, types, encodings) comes from T's parquet struct tags, or, for a table that buffers rows in a
// compact form (readings/: Reading), from the file row type its encoding converts them to; the Delta
// schema is derived from it, plus the partition columns.
type Spec[T any] struct {
	// Name is the table's directory under the lake's root.
	Name string
	// Description goes into the table's metaData.
	Description string
	// Partitioning and Time: a row goes to the partition of Time(row), Unix microseconds UTC.
	Partitioning Partitioning
	Time         func(*T) int64
	// Compare orders rows inside a file (nil: the order they were added). SortedBy names the columns
	// it sorts by, for the Parquet sorting_columns metadata.
	Compare  func(a, b *T) int
	SortedBy []string
	// Cluster, when set, returns the leading sort key as two strings (readings: sensor_id, metric)
	// and must agree with Compare. It lets the writer group rows in linear time instead of sorting
	// them: rows arrive in time order, so each group is then already in Compare order.
	Cluster func(*T) (string, string)
	// SeriesOf, when set with Cluster, returns a row's interned Series: rows of one Series are of
	// one cluster, so the writer looks up Cluster's strings once per Series, not once per row.
	SeriesOf func(*T) *Series
	// Refine, when set, reorders the rows of one cluster instead of Compare: idx holds their
	// indexes in rows, in the order they were added. It is for order that serves compression, not
	// readers (raw/: payloads that share leading bytes next to each other), so SortedBy names only
	// the cluster's columns.
	Refine func(rows []T, idx []int32)
	// Seq numbers a file after its first row: part-<Seq, 20 digits>-<uuid>.parquet.
	Seq func(*T) int64
	// Size estimates the memory a buffered row holds, for Writer.Buffered.
	Size func(*T) int64
	// Level is the zstd level of the table's files when lake.compression_level is auto: fastest,
	// default, better or best ("" is default).
	Level string
	// enc turns buffered rows into file rows (nil: T is the file row).
	enc encoding[T]
}

// FileSchema is the Parquet schema of the table's files (without the partition columns).
func (s *Spec[T]) FileSchema() *parquet.Schema { return s.encoding().schema() }

func (s *Spec[T]) encoding() encoding[T] {
	if s.enc == nil {
		return direct[T]{}
	}
	return s.enc
}

// Partition column names.
const (
	ColumnDate = "date"
	ColumnHour = "hour"
)

const (
	microsPerHour = int64(time.Hour / time.Microsecond)
	microsPerDay  = 24 * microsPerHour
)

// RawSpec is raw/: every envelope, partitioned by the hour it was received, sorted by topic, and
// within a topic grouped by payload prefix (see groupByPrefix): the messages of one sensor end up next
// to each other, in the order they arrived, so DELTA_BYTE_ARRAY and zstd find what they share.
func RawSpec() Spec[RawRow] {
	return Spec[RawRow]{
		Name: "raw", Description: "sluice bronze: every message as received, payload bytes untouched",
		Partitioning: ByHour, Time: func(r *RawRow) int64 { return r.ReceivedAt },
		SortedBy: []string{"topic"},
		Cluster:  func(r *RawRow) (string, string) { return r.Topic, "" },
		Refine: func(rows []RawRow, idx []int32) {
			groupByPrefix(rows, idx, func(r *RawRow) []byte { return r.Payload })
		},
		Seq: func(r *RawRow) int64 { return r.IngestID },
		// Measured on the simulator's payloads, 100 to 10,000 sensors (bench storage section): the
		// grouped payloads compress to within 0.1 byte a row of zstd's default level.
		Level: "fastest",
		Size: func(r *RawRow) int64 {
			return int64(unsafe.Sizeof(*r)) + int64(len(r.Source)+len(r.Topic)+len(r.Payload))
		},
	}
}

// ReadingsSpec is readings/: decoded readings, partitioned by the day of their event time, sorted by
// (sensor_id, metric, ts) inside each file so that row-group statistics prune per-sensor filters. Rows
// are buffered as Readings and written as ReadingRows.
func ReadingsSpec() Spec[Reading] {
	return Spec[Reading]{
		Name: "readings", Description: "sluice silver: typed, validated, deduplicated readings",
		Partitioning: ByDate, Time: func(r *Reading) int64 { return r.TS },
		Compare: func(a, b *Reading) int {
			if a.Series != b.Series {
				if c := strings.Compare(a.Series.SensorID, b.Series.SensorID); c != 0 {
					return c
				}
				if c := strings.Compare(a.Series.Metric, b.Series.Metric); c != 0 {
					return c
				}
			}
			if c := cmp.Compare(a.TS, b.TS); c != 0 {
				return c
			}
			return cmp.Compare(a.IngestID, b.IngestID)
		},
		SortedBy: []string{"sensor_id", "metric", "ts"},
		Cluster:  func(r *Reading) (string, string) { return r.Series.SensorID, r.Series.Metric },
		SeriesOf: func(r *Reading) *Series { return r.Series },
		Seq:      func(r *Reading) int64 { return r.IngestID },
		// The Series is shared by the readings of a sensor's metric: not counted per row.
		Size: func(r *Reading) int64 { return int64(unsafe.Sizeof(*r)) },
		enc:  through[Reading, ReadingRow]{conv: (*Reading).toRow},
	}
}

// Readings1mSpec is readings_1m/: 1-minute aggregates of readings/, partitioned by the day of the
// minute, sorted by (sensor_id, metric, minute).
func Readings1mSpec() Spec[Reading1mRow] {
	return Spec[Reading1mRow]{
		Name: "readings_1m", Description: "sluice gold: 1-minute count, sum, min, max, first and last of readings (one row per minute and commit; merge rows of the same minute)",
		Partitioning: ByDate, Time: func(r *Reading1mRow) int64 { return r.Minute },
		Compare: func(a, b *Reading1mRow) int {
			if c := strings.Compare(a.SensorID, b.SensorID); c != 0 {
				return c
			}
			if c := strings.Compare(a.Metric, b.Metric); c != 0 {
				return c
			}
			return cmp.Compare(a.Minute, b.Minute)
		},
		SortedBy: []string{"sensor_id", "metric", "minute"},
		Seq:      func(r *Reading1mRow) int64 { return r.Minute },
		Size: func(r *Reading1mRow) int64 {
			return int64(unsafe.Sizeof(*r)) + int64(len(r.SensorID)+len(r.Metric))
		},
	}
}

// QuarantineSpec is quarantine/: what could not be decoded, partitioned by the day it was received.
func QuarantineSpec() Spec[QuarantineRow] {
	return Spec[QuarantineRow]{
		Name: "quarantine", Description: "sluice quarantine: messages that could not be decoded, with the reason",
		Partitioning: ByDate, Time: func(r *QuarantineRow) int64 { return r.ReceivedAt },
		Compare:  func(a, b *QuarantineRow) int { return cmp.Compare(a.IngestID, b.IngestID) },
		SortedBy: []string{"ingest_id"},
		Seq:      func(r *QuarantineRow) int64 { return r.IngestID },
		Size: func(r *QuarantineRow) int64 {
			return int64(unsafe.Sizeof(*r)) + int64(len(r.Source)+len(r.Topic)+len(r.Payload)+len(r.Reason)+len(r.Detail))
		},
	}
}

// SensorsSpec is sensors/: every distinct version of the sensor registry, unpartitioned.
func SensorsSpec() Spec[SensorsRow] {
	return Spec[SensorsRow]{
		Name: "sensors", Description: "sluice: every version of the sensor registry, raw",
		Compare:  func(a, b *SensorsRow) int { return cmp.Compare(a.LoadedAt, b.LoadedAt) },
		SortedBy: []string{"loaded_at"},
		Seq:      func(r *SensorsRow) int64 { return r.LoadedAt },
		Size: func(r *SensorsRow) int64 {
			return int64(unsafe.Sizeof(*r)) + int64(len(r.Digest)+len(r.Origin)+len(r.Raw))
		},
	}
}

func (s *Spec[T]) validate() error {
	switch {
	case s.Name == "" || strings.ContainsAny(s.Name, "/\\") || strings.HasPrefix(s.Name, "_") || strings.HasPrefix(s.Name, "."):
		return fmt.Errorf("table name %q: want a plain directory name", s.Name)
	case s.Partitioning != Unpartitioned && s.Time == nil:
		return fmt.Errorf("table %s: partitioned without a Time function", s.Name)
	case s.Partitioning < Unpartitioned || s.Partitioning > ByHour:
		return fmt.Errorf("table %s: unknown partitioning %d", s.Name, s.Partitioning)
	case s.Seq == nil || s.Size == nil:
		return fmt.Errorf("table %s: Seq and Size are required", s.Name)
	}
	return nil
}

// partitionColumns returns the table's partition columns and their Delta types.
func (p Partitioning) columns() []delta.StructField {
	var out []delta.StructField
	if p >= ByDate {
		out = append(out, delta.StructField{Name: ColumnDate, Type: delta.Primitive(delta.TypeDate), Nullable: true})
	}
	if p >= ByHour {
		out = append(out, delta.StructField{Name: ColumnHour, Type: delta.Primitive(delta.TypeInteger), Nullable: true})
	}
	return out
}

// key returns the partition a time falls in: a day or hour number since the epoch (0 when unpartitioned).
func (p Partitioning) key(micros int64) int64 {
	switch p {
	case ByDate:
		return floorDiv(micros, microsPerDay)
	case ByHour:
		return floorDiv(micros, microsPerHour)
	}
	return 0
}

// dir returns the directory of partition key (with a trailing slash, "" when unpartitioned) and its
// partition values as the Delta log serialises them.
func (p Partitioning) dir(key int64) (string, map[string]string) {
	switch p {
	case ByDate:
		d := delta.FormatDate(time.UnixMicro(key * microsPerDay))
		return ColumnDate + "=" + d + "/", map[string]string{ColumnDate: d}
	case ByHour:
		t := time.UnixMicro(key * microsPerHour).UTC()
		d := delta.FormatDate(t)
		return fmt.Sprintf("%s=%s/%s=%02d/", ColumnDate, d, ColumnHour, t.Hour()),
			map[string]string{ColumnDate: d, ColumnHour: fmt.Sprint(t.Hour())}
	}
	return "", map[string]string{}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// statKind is how a column's Delta statistics are computed from the Parquet footer.
type statKind int

const (
	statNone      statKind = iota // nested columns: nothing
	statNulls                     // binary: null count only
	statInt64                     // long
	statInt32                     // integer
	statDouble                    // double
	statString                    // string
	statTimestamp                 // timestamp
)

type statColumn struct {
	name string
	kind statKind
}

// deltaSchema derives the table's Delta schema from the Parquet schema of its files, plus the
// partition columns, and says which statistics each column gets.
func deltaSchema(ps *parquet.Schema, p Partitioning) (*delta.StructType, []statColumn, error) {
	st := &delta.StructType{}
	var stats []statColumn
	for _, f := range ps.Fields() {
		dt, kind, err := deltaType(f)
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", f.Name(), err)
		}
		st.Fields = append(st.Fields, delta.StructField{Name: f.Name(), Type: dt, Nullable: f.Optional()})
		stats = append(stats, statColumn{name: f.Name(), kind: kind})
	}
	st.Fields = append(st.Fields, p.columns()...)
	return st, stats, nil
}

func deltaType(n parquet.Node) (delta.DataType, statKind, error) {
	if !n.Leaf() {
		if isList(n) && len(n.Fields()) == 1 {
			list := n.Fields()[0] // repeated group "list"
			if len(list.Fields()) == 1 {
				elem := list.Fields()[0]
				et, _, err := deltaType(elem)
				if err != nil {
					return delta.DataType{}, statNone, fmt.Errorf("list element: %w", err)
				}
				return delta.DataType{Array: &delta.ArrayType{ElementType: et, ContainsNull: elem.Optional()}}, statNone, nil
			}
		}
		return delta.DataType{}, statNone, fmt.Errorf("unsupported group %s", n)
	}
	var lv format.LogicalTypeValue
	if lt := n.Type().LogicalType(); lt != nil {
		lv = lt.Value
	}
	switch n.Type().Kind() {
	case parquet.Int64:
		if ts, ok := lv.(*format.TimestampType); ok {
			if _, micros := ts.Unit.Value.(*format.MicroSeconds); !ts.IsAdjustedToUTC || !micros {
				return delta.DataType{}, statNone, fmt.Errorf("timestamp must be (isAdjustedToUTC=true, MICROS), is %s", ts)
			}
			return delta.Primitive(delta.TypeTimestamp), statTimestamp, nil
		}
		return delta.Primitive(delta.TypeLong), statInt64, nil
	case parquet.Int32:
		return delta.Primitive(delta.TypeInteger), statInt32, nil
	case parquet.Double:
		return delta.Primitive(delta.TypeDouble), statDouble, nil
	case parquet.ByteArray:
		if _, ok := lv.(*format.StringType); ok {
			return delta.Primitive(delta.TypeString), statString, nil
		}
		return delta.Primitive(delta.TypeBinary), statNulls, nil
	}
	return delta.DataType{}, statNone, fmt.Errorf("unsupported type %s", n.Type())
}

func isList(n parquet.Node) bool {
	if lt := n.Type().LogicalType(); lt != nil {
		_, ok := lt.Value.(*format.ListType)
		return ok
	}
	return false
}
