package decode

import (
	"fmt"
	"math"
	"time"

	"github.com/valyala/fastjson"
)

// values fills d.vals with the message's values.
func (d *Decoder) values(root *fastjson.Value, pl *plan) *Error {
	d.vals = d.vals[:0]
	if pl.values != nil { // a mapping's list (general path only: such plans are not fastOK)
		for i := range pl.values {
			sel := &pl.values[i]
			if sel.all {
				x := d.lookup(root, &sel.path)
				if x == nil || x.Type() == fastjson.TypeNull {
					continue
				}
				if x.Type() != fastjson.TypeObject {
					return &Error{Reason: ReasonValueNotNumber, Detail: fmt.Sprintf("values at %q is %s, not an object", sel.path.name, typeName(x.Type()))}
				}
				var reserved map[string]bool
				if len(sel.path.segs) == 0 {
					reserved = pl.reserved
				}
				if e := d.numericFields(x, sel.path.name, reserved); e != nil {
					return e
				}
				continue
			}
			j := d.get(root, &sel.path)
			if j.kind == kAbsent || j.kind == kNull {
				continue
			}
			v, e := d.number(&j, sel.path.name, nil)
			if e != nil {
				return e
			}
			d.vals = append(d.vals, namedValue{metric: sel.metric, v: v})
		}
	} else {
		value := d.present(pl.value, pl.valueMask)
		for i := range value {
			if d.absent(&value[i]) {
				continue
			}
			j := d.get(root, &value[i])
			if j.kind == kAbsent || j.kind == kNull {
				continue
			}
			v, e := d.number(&j, value[i].name, nil)
			if e != nil {
				return e
			}
			d.vals = append(d.vals, namedValue{v: v})
			return nil
		}
		if pl.autoMulti {
			if e := d.autoValues(root, pl); e != nil {
				return e
			}
		}
	}
	if len(d.vals) == 0 {
		return &Error{Reason: ReasonMissingValue, Detail: "no value in the fields " + pl.valueList + multiNote(pl)}
	}
	return nil
}

func multiNote(pl *plan) string {
	if pl.autoMulti {
		return ", and no other numeric field"
	}
	return ""
}

// autoValues appends every numeric field (but the reserved ones) and every numeric field of the first
// "values" and "readings" objects, each named by its key.
func (d *Decoder) autoValues(root *fastjson.Value, pl *plan) *Error {
	if !d.fast {
		if e := d.numericFields(root, "", pl.reserved); e != nil {
			return e
		}
		nested := d.present(pl.nested, pl.nestedMask)
		for i := range nested {
			if x := d.lookup(root, &nested[i]); x != nil && x.Type() == fastjson.TypeObject {
				if e := d.numericFields(x, nested[i].name, nil); e != nil {
					return e
				}
			}
		}
		return nil
	}
	for g := uint8(0); g < 3; g++ { // in the general path's order: top level, values, readings
		at := ""
		if g > 0 {
			at = autoNestedValues[g-1]
		}
		for i := range d.fs.nums {
			nf := &d.fs.nums[i]
			if nf.group != g || g == 0 && pl.reserved[string(d.fs.bytes(nf.key))] {
				continue
			}
			if e := d.addNamed(d.fs.bytes(nf.key), d.fs.bytes(nf.raw), at); e != nil {
				return e
			}
		}
	}
	return nil
}

// sensorID finds the sensor id: the first present field (a string or a number's text), else the
// topic's +sensor_id part.
func (d *Decoder) sensorID(root *fastjson.Value, pl *plan, parts *topicParts) (sensorRef, *Error) {
	paths := d.present(pl.sensor, pl.sensorMask)
	for i := range paths {
		p := &paths[i]
		if d.absent(p) {
			continue
		}
		j := d.get(root, p)
		var b []byte
		switch j.kind {
		case kAbsent, kNull:
			continue
		case kString:
			if b = j.b; len(b) == 0 {
				continue
			}
		case kNumber:
			b = d.numText(&j)
		default:
			if !p.explicit {
				continue
			}
			return sensorRef{}, &Error{Reason: ReasonBadSensorID, Detail: fmt.Sprintf("the sensor id at %q is %s, not a string or number", p.name, kindName(j.kind))}
		}
		if string(b) == d.lastSensor.id {
			return d.lastSensor, nil
		}
		id, ok := d.sensors.bytes(b)
		if !ok {
			return sensorRef{}, &Error{Reason: ReasonBadSensorID, Detail: fmt.Sprintf("the sensor id at %q, %s, is not valid UTF-8 of 1 to %d bytes", p.name, quote(string(b)), maxText)}
		}
		d.lastSensor = id
		return id, nil
	}
	if parts.sensor != "" {
		if parts.sensor == d.lastSensor.id {
			return d.lastSensor, nil
		}
		id, ok := d.sensors.str(parts.sensor)
		if !ok {
			return sensorRef{}, &Error{Reason: ReasonBadSensorID, Detail: fmt.Sprintf("the sensor id from the topic, %s, is not valid UTF-8 of 1 to %d bytes", quote(parts.sensor), maxText)}
		}
		d.lastSensor = id
		return id, nil
	}
	return sensorRef{}, &Error{Reason: ReasonMissingSensorID, Detail: fmt.Sprintf("no sensor id in the fields %s, and no +sensor_id part in the topic", pl.sensorList)}
}

// timestamp finds and checks the event time (µs); without one it is the receipt time, flagged.
func (d *Decoder) timestamp(root *fastjson.Value, pl *plan, receivedAt int64) (int64, Flags, *Error) {
	paths := d.present(pl.ts, pl.tsMask)
	for i := range paths {
		p := &paths[i]
		if d.absent(p) {
			continue
		}
		j := d.get(root, p)
		var us int64
		var ok bool
		var text []byte
		switch j.kind {
		case kAbsent, kNull:
			continue
		case kString:
			text = j.b
			us, ok = parseTSText(b2s(text), pl.tsFormat)
		case kNumber:
			text = d.numText(&j)
			us, ok = parseTSNumber(b2s(text), pl.tsFormat)
		default: // a timestamp field of another type is broken, whatever its name
			return 0, 0, &Error{Reason: ReasonBadTimestamp, Detail: fmt.Sprintf("the timestamp at %q is %s, not text or a number", p.name, kindName(j.kind))}
		}
		if !ok {
			return 0, 0, &Error{Reason: ReasonBadTimestamp, Detail: fmt.Sprintf("the timestamp at %q, %s, is not %s", p.name, quote(string(text)), tsFormatName(pl.tsFormat))}
		}
		if us < d.minTS {
			return 0, 0, &Error{Reason: ReasonTimestampTooOld, Detail: fmt.Sprintf("the timestamp at %q, %s, is %s, before min_timestamp %s", p.name, quote(string(text)), fmtUS(us), fmtUS(d.minTS))}
		}
		if d.maxFuture > 0 && receivedAt > 0 {
			limit := receivedAt + d.maxFuture
			if limit < receivedAt { // overflow
				limit = math.MaxInt64
			}
			if us > limit/1000 {
				return 0, 0, &Error{Reason: ReasonTimestampInFuture, Detail: fmt.Sprintf("the timestamp at %q, %s, is %s, more than max_future %s after its receipt at %s", p.name, quote(string(text)), fmtUS(us), time.Duration(d.maxFuture), fmtUS(receivedAt/1000))}
			}
		}
		return us, 0, nil
	}
	return floorDiv(receivedAt, 1000), FlagTSFromReceipt, nil
}

// text finds a metric or unit: the mapping's constant, the first present text field, or the topic's
// part; "" when none. *last is the previous answer, which saves the intern lookup in steady streams.
func (d *Decoder) text(root *fastjson.Value, paths []fieldPath, fixed, topicPart, what string, last *string) (string, *Error) {
	if fixed != "" {
		return fixed, nil
	}
	for i := range paths {
		p := &paths[i]
		if d.absent(p) {
			continue
		}
		j := d.get(root, p)
		switch j.kind {
		case kAbsent, kNull:
			continue
		case kString:
			b := j.b
			if len(b) == 0 {
				continue
			}
			if string(b) == *last {
				return *last, nil
			}
			s, ok := d.in.bytes(b)
			if !ok {
				return "", &Error{Reason: ReasonBadField, Detail: fmt.Sprintf("the %s at %q, %s, is not valid UTF-8 of 1 to %d bytes", what, p.name, quote(string(b)), maxText)}
			}
			*last = s
			return s, nil
		default:
			if !p.explicit {
				continue
			}
			return "", &Error{Reason: ReasonBadField, Detail: fmt.Sprintf("the %s at %q is %s, not text", what, p.name, kindName(j.kind))}
		}
	}
	if topicPart != "" {
		if topicPart == *last {
			return *last, nil
		}
		s, ok := d.in.str(topicPart)
		if !ok {
			return "", &Error{Reason: ReasonBadField, Detail: fmt.Sprintf("the %s from the topic, %s, is not valid UTF-8 of 1 to %d bytes", what, quote(topicPart), maxText)}
		}
		*last = s
		return s, nil
	}
	return "", nil
}

func tsFormatName(f tsFormat) string {
	switch f.kind {
	case tsRFC3339:
		return "RFC 3339 text with a zone"
	case tsISO8601:
		return "ISO 8601 text"
	case tsLayout:
		return fmt.Sprintf("in the layout %q", f.layout)
	case tsUnixS, tsUnixMS, tsUnixUS, tsUnixNS:
		return "a Unix time in range"
	}
	return "ISO 8601 / RFC 3339 text or a Unix time in range"
}
