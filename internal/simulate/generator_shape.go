package simulate

import (
	"strconv"
	"time"

	"github.com/sluice-project/sluice/internal/sensor"
)

// tsKind is how a shape writes its timestamp.
type tsKind uint8

const (
	tsISOLocal  tsKind = iota // "2026-11-22T17:40:25.123456" (UTC, no zone), as fixture line 1
	tsISOZulu                 // "2026-11-22T17:40:25.123456Z", as fixture line 3 (at µs)
	tsUnixSec                 // 1795369225, as fixture line 2
	tsUnixMilli               // 1795369225123, as fixture line 4
)

const isoMicro = "2006-01-02T15:04:05.000000"

// shape is one message shape: its default topic, its timestamp, and how a payload is assembled from
// per-sensor fragments that never change (built once) and the timestamp and value (appended per message):
//
//	frag[0] ts frag[1] value frag[2]   when tsFirst
//	frag[0] value frag[1] ts frag[2]   otherwise
type shape struct {
	topic   string
	ts      tsKind
	res     time.Duration // timestamp resolution
	tsFirst bool
	frags   func(s *sensor.Sensor, id, metric, unit string) [3]string
}

var shapes = map[string]*shape{
	ShapeNested: {topic: "sensors", ts: tsISOLocal, res: time.Microsecond, tsFirst: true,
		frags: func(s *sensor.Sensor, id, metric, unit string) [3]string {
			meta := `,"metadata":{`
			if s.HasLocation {
				meta += `"lat":` + num(s.Lat) + `,"lng":` + num(s.Lng) + `,`
			}
			meta += `"unit":` + str(unit) + `,"type":` + str(metric) + `,"description":` + str(s.Description) + `}}`
			return [3]string{`{"sensor_id":` + str(id) + `,"timestamp":"`, `","value":`, meta}
		}},
	ShapeFlatUnix: {topic: "sensors/{sensor}", ts: tsUnixSec, res: time.Second,
		frags: func(s *sensor.Sensor, id, metric, unit string) [3]string {
			mid := `,"unit":` + str(unit)
			if s.HasLocation {
				mid += `,"location":{"lat":` + num(s.Lat) + `,"lng":` + num(s.Lng) + `}`
			}
			return [3]string{`{"sensor_id":` + str(id) + `,"type":` + str(metric) + `,"value":`, mid + `,"timestamp":`, `}`}
		}},
	ShapeMetricType: {topic: "sensor-data", ts: tsISOZulu, res: time.Microsecond, tsFirst: true,
		frags: func(s *sensor.Sensor, id, metric, unit string) [3]string {
			return [3]string{`{"sensor_id":` + str(id) + `,"timestamp":"`, `","metric_type":` + str(metric) + `,"value":`, `}`}
		}},
	ShapeTopicMS: {topic: "plant/{site}/{line}/{sensor}/{metric}", ts: tsUnixMilli, res: time.Millisecond, tsFirst: true,
		frags: func(*sensor.Sensor, string, string, string) [3]string {
			return [3]string{`{"ts":`, `,"v":`, `}`}
		}},
}

func str(s string) string  { return string(appendJSONString(nil, s)) }
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// appendTS appends a timestamp given in units of the shape's resolution.
func (sh *shape) appendTS(dst []byte, units int64) []byte {
	switch sh.ts {
	case tsUnixSec, tsUnixMilli:
		return strconv.AppendInt(dst, units, 10)
	}
	t := time.Unix(0, units*int64(sh.res)).UTC()
	dst = t.AppendFormat(dst, isoMicro)
	if sh.ts == tsISOZulu {
		dst = append(dst, 'Z')
	}
	return dst
}

// appendValue appends v as the payload's value: a number with at most two decimals, or for the
// wrong_type and nan malformations a string or the bare token NaN.
func appendValue(dst []byte, v float64, malformed string) []byte {
	switch malformed {
	case MalformedNaN:
		return append(dst, "NaN"...)
	case MalformedWrongType:
		dst = append(dst, '"')
		dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
		return append(dst, '"')
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}
