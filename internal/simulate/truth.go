package simulate

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Fault names an injected fault, as written in the truth file's "fault" field. "" is no fault.
type Fault string

// The faults the generator injects (see FaultsConfig for what each does).
const (
	FaultNone       Fault = ""
	FaultSpike      Fault = "spike"
	FaultStuck      Fault = "stuck"
	FaultGap        Fault = "gap"
	FaultDuplicate  Fault = "duplicate"
	FaultLate       Fault = "late"
	FaultOutOfOrder Fault = "out_of_order"
	FaultMalformed  Fault = "malformed"
)

// Kinds of malformed payload, in the truth file's "kind" field.
const (
	MalformedInvalidJSON = "invalid_json" // the first ':' is replaced by '='
	MalformedWrongType   = "wrong_type"   // the value is a JSON string
	MalformedNaN         = "nan"          // the value is the bare token NaN
	MalformedEmpty       = "empty"        // a zero-length payload
	MalformedTruncated   = "truncated"    // a strict prefix of the valid payload
)

var malformedKinds = [...]string{MalformedInvalidJSON, MalformedWrongType, MalformedNaN, MalformedEmpty, MalformedTruncated}

// Truth is what the simulator knows about one message it generated: the ground truth that quality and
// anomaly scoring is measured against.
type Truth struct {
	Seq      int64     // 1, 2, … in generation order, duplicates included
	SensorID string    // the sensor's id
	Metric   string    // the sensor's type (temperature, …), "value" when it has none
	TS       time.Time // the timestamp as written in the payload (at the shape's resolution), UTC
	Value    float64   // the value the payload carries (or meant to carry, when malformed)
	HasValue bool      // false when the payload carries no number: NaN or empty
	Fault    Fault     // the fault injected into this message, FaultNone when none
	Kind     string    // malformed: which kind (Malformed… constants)
	Missed   int       // gap: how many of the sensor's intervals passed silently before this message
	DupOf    int64     // duplicate: the Seq of the message this one copies
	Topic    string    // the topic it was published on
}

// AppendJSON appends t as one JSON object (no newline):
//
//	{"seq":1,"sensor_id":"…","metric":"…","ts":"2026-11-22T17:40:25.123456Z","value":23.17,"fault":"","topic":"…"}
//
// with "kind", "missed" and "dup_of" added when they apply, and "value":null when HasValue is false.
func (t *Truth) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, t.Seq, 10)
	dst = append(dst, `,"sensor_id":`...)
	dst = appendJSONString(dst, t.SensorID)
	dst = append(dst, `,"metric":`...)
	dst = appendJSONString(dst, t.Metric)
	dst = append(dst, `,"ts":"`...)
	dst = t.TS.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","value":`...)
	if t.HasValue && !math.IsNaN(t.Value) && !math.IsInf(t.Value, 0) {
		dst = strconv.AppendFloat(dst, t.Value, 'f', -1, 64)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"fault":"`...)
	dst = append(dst, t.Fault...)
	dst = append(dst, '"')
	if t.Kind != "" {
		dst = append(dst, `,"kind":"`...)
		dst = append(dst, t.Kind...)
		dst = append(dst, '"')
	}
	if t.Missed > 0 {
		dst = append(dst, `,"missed":`...)
		dst = strconv.AppendInt(dst, int64(t.Missed), 10)
	}
	if t.DupOf > 0 {
		dst = append(dst, `,"dup_of":`...)
		dst = strconv.AppendInt(dst, t.DupOf, 10)
	}
	dst = append(dst, `,"topic":`...)
	dst = appendJSONString(dst, t.Topic)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
