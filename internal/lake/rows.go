package lake

import (
	"math/bits"
	"strconv"
)

// The row types of sluice's tables. Timestamps are Unix microseconds, UTC, written as Parquet
// TIMESTAMP(isAdjustedToUTC=true, MICROS) and declared "timestamp" in the Delta schema. The parquet
// tags are the table's file schema: column names, and the encoding chosen for each column (measured
// on 1 Hz random-walk readings; see docs/format/lake.md). Partition columns (date, hour) are not in
// the files: they live in the Delta log and the directory names.

// RawRow is one envelope as received: the raw/ table (bronze).
type RawRow struct {
	IngestID   int64  `parquet:"ingest_id,delta"`
	ReceivedAt int64  `parquet:"received_at,timestamp(microsecond:utc),delta"`
	Source     string `parquet:"source,dict"`
	Topic      string `parquet:"topic,dict"`
	QoS        int32  `parquet:"qos,dict"`
	Payload    []byte `parquet:"payload,delta"` // untouched bytes
}

// ReadingRow is one decoded reading: the readings/ table (silver).
type ReadingRow struct {
	SensorID   string   `parquet:"sensor_id,dict"`
	Metric     string   `parquet:"metric,dict"`
	TS         int64    `parquet:"ts,timestamp(microsecond:utc),delta"`
	Value      float64  `parquet:"value"`
	Unit       string   `parquet:"unit,optional,dict"` // "" is written as NULL
	ReceivedAt int64    `parquet:"received_at,timestamp(microsecond:utc),delta"`
	IngestID   int64    `parquet:"ingest_id,delta"`
	Flags      []string `parquet:"flags,list" parquet-element:",dict"` // empty list when none
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

// Reading flags. A reading's flags are a bit set (decode.Flags sets the bits); FlagsOf turns it into
// the flags column. Bit i is named FlagNames[i], the same names and bits as decode.Flags.Names: keep
// the two in step, and only ever append.
const (
	FlagUnknownSensor uint32 = 1 << iota // the sensor is not in the registry
	FlagOutOfRange                       // the value is outside the sensor's range
	FlagUnitMismatch                     // the payload's unit differs from the registry's
	FlagTSFromReceipt                    // the payload had no timestamp: ts is the time sluice received it
)

// FlagNames are the values of the flags column, by bit.
var FlagNames = [...]string{"unknown_sensor", "out_of_range", "unit_mismatch", "ts_from_receipt"}

// flagSets holds the flags column of every combination of the named bits, so that FlagsOf does not
// allocate per reading. Immutable after package initialisation.
var flagSets = func() [][]string {
	sets := make([][]string, 1<<len(FlagNames))
	for mask := range sets {
		sets[mask] = flagList(uint32(mask))
	}
	return sets
}()

func flagList(mask uint32) []string {
	out := make([]string, 0, bits.OnesCount32(mask))
	for mask != 0 {
		i := bits.TrailingZeros32(mask)
		if i < len(FlagNames) {
			out = append(out, FlagNames[i])
		} else {
			out = append(out, "flag_"+strconv.Itoa(i))
		}
		mask &^= 1 << i
	}
	return out[:len(out):len(out)]
}

// FlagsOf returns the flags column for a reading's flag bits, in bit order; bits without a name come
// out as "flag_<bit>". The slice is shared between readings with the same flags: do not modify it.
func FlagsOf(mask uint32) []string {
	if int(mask) < len(flagSets) {
		return flagSets[mask]
	}
	return flagList(mask)
}
