package decode

import (
	"strconv"
	"strings"
)

// Reading is one typed value decoded from a message: a row of the silver table readings/.
type Reading struct {
	SensorID string  // never empty
	Metric   string  // never empty: from the payload, the topic, the registry's type, or "value"
	TS       int64   // event time, Unix microseconds, UTC
	Value    float64 // always finite
	Unit     string  // "" = unknown
	Flags    Flags
}

// Flags is a set of remarks about a reading that was kept: none of them is a reason to drop it.
type Flags uint32

// The flags, in the order Names lists them.
const (
	// FlagUnknownSensor: the registry does not know the sensor id.
	FlagUnknownSensor Flags = 1 << iota
	// FlagOutOfRange: the value lies outside the range the registry gives for the sensor's metric.
	FlagOutOfRange
	// FlagUnitMismatch: the payload names a unit that differs from the registry's (the payload's is kept).
	FlagUnitMismatch
	// FlagTSFromReceipt: the message carried no timestamp; TS is the time sluice received it.
	FlagTSFromReceipt

	flagCount = iota
	flagMask  = Flags(1<<flagCount - 1)
)

var flagNameList = [flagCount]string{"unknown_sensor", "out_of_range", "unit_mismatch", "ts_from_receipt"}

// flagNames holds Names' answer for every combination of known flags, computed once.
var flagNames = func() (t [1 << flagCount][]string) {
	for f := range t {
		names := []string{}
		for i, n := range flagNameList {
			if f&(1<<i) != 0 {
				names = append(names, n)
			}
		}
		t[f] = names
	}
	return t
}()

// Names returns the names of the flags set in f, in bit order, e.g. ["unknown_sensor", "out_of_range"];
// an empty, non-nil slice when none is. The slice is shared by every caller and must not be modified:
// it costs no allocation, so it can go straight into a list column of every row. Unknown bits are ignored.
func (f Flags) Names() []string { return flagNames[f&flagMask] }

// Has reports whether every flag in g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// String returns the names joined with "|", or "" when no flag is set.
func (f Flags) String() string { return strings.Join(f.Names(), "|") }

// Reason names why a message went to quarantine instead of readings/. It is stored as is in the
// quarantine table's reason column and used as a metric label, so the set is fixed.
type Reason string

// The reasons, in the order Decode checks them.
const (
	ReasonEmptyPayload      Reason = "empty_payload"       // no bytes, or only white space
	ReasonTooLarge          Reason = "too_large"           // over max_payload_size
	ReasonInvalidJSON       Reason = "invalid_json"        // not JSON (including a malformed number)
	ReasonNotAnObject       Reason = "not_an_object"       // JSON, but not an object or an array of objects
	ReasonMissingValue      Reason = "missing_value"       // no value field, or null
	ReasonValueNotNumber    Reason = "value_not_number"    // a value that is neither a number, a numeric string nor a boolean
	ReasonValueNotFinite    Reason = "value_not_finite"    // NaN or ±Inf (as a literal, a string, or an overflowing number)
	ReasonMissingSensorID   Reason = "missing_sensor_id"   // no sensor id in the payload nor the topic
	ReasonBadSensorID       Reason = "bad_sensor_id"       // a sensor id that is not a string or number, not UTF-8, or too long
	ReasonBadField          Reason = "bad_field"           // a metric or unit (or a value's field name) that is not a string, not UTF-8, or too long
	ReasonBadTimestamp      Reason = "bad_timestamp"       // a timestamp in no format sluice reads, or out of the int64 range
	ReasonTimestampTooOld   Reason = "timestamp_too_old"   // before min_timestamp
	ReasonTimestampInFuture Reason = "timestamp_in_future" // later than receipt + max_future
)

// Reasons returns every Reason, in the order Decode checks them.
func Reasons() []Reason {
	return []Reason{
		ReasonEmptyPayload, ReasonTooLarge, ReasonInvalidJSON, ReasonNotAnObject, ReasonMissingValue,
		ReasonValueNotNumber, ReasonValueNotFinite, ReasonMissingSensorID, ReasonBadSensorID, ReasonBadField,
		ReasonBadTimestamp, ReasonTimestampTooOld, ReasonTimestampInFuture,
	}
}

// Error is returned by Decode for a message that goes to quarantine.
type Error struct {
	Reason Reason
	Detail string // what and where: the field path and the offending text (truncated)
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Detail }

// maxQuoted bounds the offending text quoted in a Detail.
const maxQuoted = 100

// quote returns s quoted for a Detail, cut to about maxQuoted bytes on a rune boundary.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(truncate(s, maxQuoted))
}
