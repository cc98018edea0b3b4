package lake

import "strings"

// The row types of sluice's tables. Timestamps are Unix microseconds, UTC, written as Parquet
// TIMESTAMP(isAdjustedToUTC=true, MICROS) and declared "timestamp" in the Delta schema. The parquet
// tags are the table's file schema: column names, and the encoding chosen for each column (measured
// on 1 Hz random-walk readings; see docs/format/lake.md). Partition columns (date, hour) are not in
// the files: they live in the Delta log and the directory names.

// RawRow is one envelope as received: the raw/ table (bronze).
type RawRow struct {
	IngestID   int64  `parquet:"ingest_id,delta"`
	ReceivedAt int64  `parquet:"received_at,timestamp(microsecond:utc)"` // PLAIN: see ReadingRow
	Source     string `parquet:"source,dict"`
	Topic      string `parquet:"topic,dict"`
	QoS        int32  `parquet:"qos,dict"`
	Payload    []byte `parquet:"payload,delta"` // untouched bytes
}

// ReadingRow is one decoded reading: the readings/ table (silver).
type ReadingRow struct {
	SensorID string  `parquet:"sensor_id,dict"`
	Metric   string  `parquet:"metric,dict"`
	TS       int64   `parquet:"ts,timestamp(microsecond:utc),delta"`
	Value    float64 `parquet:"value"`
	Unit     string  `parquet:"unit,optional,dict"` // "" is written as NULL
	// received_at is PLAIN (then zstd), not DELTA_BINARY_PACKED: sorted by sensor, the column jumps
	// back at every sensor, and a delta block holding a jump packs all its values wide (3.1 against
	// 2.35 bytes a row at 100 sensors; see docs/format/lake.md).
	ReceivedAt int64    `parquet:"received_at,timestamp(microsecond:utc)"`
	IngestID   int64    `parquet:"ingest_id,delta"`
	Flags      []string `parquet:"flags,list" parquet-element:",dict"` // empty list when none
}

// Series is what readings share beside their time and value: sensor, metric, unit and flags. The
// decoder interns one per distinct combination, so a buffered Reading holds a pointer instead of three
// strings and a list. Shared by many readings: never modified once in use.
type Series struct {
	SensorID string
	Metric   string
	Unit     string   // "" is unknown (written as NULL)
	Flags    []string // shared and never modified; empty or nil when none (written as an empty list)
}

// Reading is how readings/ rows are buffered until their commit: 40 bytes where a ReadingRow takes
// 104 (with 100,000 sensors at ~50,000 readings/s the two buffers of a commit held 177 MB of
// ReadingRows). The writer turns them into ReadingRows a chunk at a time as it writes a file.
type Reading struct {
	Series     *Series
	TS         int64 // event time, Unix microseconds UTC
	Value      float64
	ReceivedAt int64 // Unix microseconds UTC
	IngestID   int64
}

// Row returns r as a row of readings/ files.
func (r *Reading) Row() ReadingRow {
	var row ReadingRow
	r.toRow(&row)
	return row
}

func (r *Reading) toRow(row *ReadingRow) {
	s := r.Series
	*row = ReadingRow{
		SensorID: s.SensorID, Metric: s.Metric, TS: r.TS, Value: r.Value, Unit: s.Unit,
		ReceivedAt: r.ReceivedAt, IngestID: r.IngestID, Flags: s.FlagList(),
	}
}

// FlagList returns the flags as the list column holds them: an empty list, not nil, when none.
func (s *Series) FlagList() []string {
	if s.Flags == nil {
		return noFlags
	}
	return s.Flags
}

var noFlags = []string{}

// ReadingsOf returns rows as Readings, each distinct (sensor, metric, unit, flags) sharing one
// Series: for tests and tools that build rows directly.
func ReadingsOf(rows []ReadingRow) []Reading {
	type key struct {
		sensor, metric, unit, flags string
	}
	series := map[key]*Series{}
	out := make([]Reading, len(rows))
	for i := range rows {
		r := &rows[i]
		k := key{r.SensorID, r.Metric, r.Unit, strings.Join(r.Flags, "\x00")}
		s := series[k]
		if s == nil {
			s = &Series{SensorID: r.SensorID, Metric: r.Metric, Unit: r.Unit, Flags: r.Flags}
			series[k] = s
		}
		out[i] = Reading{Series: s, TS: r.TS, Value: r.Value, ReceivedAt: r.ReceivedAt, IngestID: r.IngestID}
	}
	return out
}

// Reading1mRow aggregates the readings of one (sensor_id, metric) in one UTC minute that one commit
// covered: the readings_1m/ table (gold). A minute whose readings were committed in several commits
// has several rows; merging them (add count and sum, min of min, max of max, first of the earliest
// first_ts, last of the latest last_ts) gives the minute. The SQL view readings_1m does that.
type Reading1mRow struct {
	SensorID string  `parquet:"sensor_id,dict"`
	Metric   string  `parquet:"metric,dict"`
	Minute   int64   `parquet:"minute,timestamp(microsecond:utc),delta"` // the minute's start
	Count    int64   `parquet:"count,delta"`
	Sum      float64 `parquet:"sum"`
	Min      float64 `parquet:"min"`
	Max      float64 `parquet:"max"`
	FirstTS  int64   `parquet:"first_ts,timestamp(microsecond:utc),delta"`
	First    float64 `parquet:"first"`
	LastTS   int64   `parquet:"last_ts,timestamp(microsecond:utc),delta"`
	Last     float64 `parquet:"last"`
}

// QuarantineRow is one message that could not be decoded, with the reason: the quarantine/ table.
type QuarantineRow struct {
	IngestID   int64  `parquet:"ingest_id,delta"`
	ReceivedAt int64  `parquet:"received_at,timestamp(microsecond:utc),delta"`
	Source     string `parquet:"source,dict"`
	Topic      string `parquet:"topic,dict"`
	Payload    []byte `parquet:"payload"`
	Reason     string `parquet:"reason,dict"`
	Detail     string `parquet:"detail"`
}

// SensorsRow is one version of the sensor registry, raw: the sensors/ table.
type SensorsRow struct {
	Digest      string `parquet:"digest"`
	LoadedAt    int64  `parquet:"loaded_at,timestamp(microsecond:utc)"`
	Origin      string `parquet:"origin"`
	SensorCount int32  `parquet:"sensor_count"`
	Raw         []byte `parquet:"raw"`
}
