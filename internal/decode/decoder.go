package decode

import (
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/sluice-project/sluice/internal/sensor"
)

// Decoder turns message payloads into readings. It is used by one goroutine (Decode); SetRegistry may
// be called from any goroutine.
type Decoder struct {
	maxPayload int
	minTS      int64 // µs
	maxFuture  int64 // ns, 0 = no limit
	plans      []plan
	auto       plan
	patterns   []topicFilter
	reg        atomic.Pointer[sensor.Registry]

	parser               fastjson.Parser
	in                   interner    // metrics and units
	sensors              sensorCache // sensor ids and their registry entries
	lastMetric, lastUnit string      // the previous answers: steady streams skip the intern lookups
	lastSensor           sensorRef
	num                  []byte                    // scratch: a number's text
	vals                 []namedValue              // scratch: the values of the message being decoded
	found                [numSlots]*fastjson.Value // the object scan's result, by autoSlot
	mask                 uint32                    // the slots found, and pathBit (all bits when the plan does not scan)
	scanFn               func(k []byte, v *fastjson.Value)
	fs                   fastScan // the one-pass reader of the zero-configuration fields
	fast                 bool     // the message being decoded was read by fs
	noFast               bool     // tests: always take the general path
}

type namedValue struct {
	metric string // "" = the message's metric
	v      float64
}

// New returns a decoder for cfg that checks sensors against reg (nil: every sensor is unknown).
func New(cfg Config, reg *sensor.Registry) (*Decoder, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	def, err := parseTSFormat(cfg.TimestampFormat)
	if err != nil {
		return nil, fmt.Errorf("decode: timestamp_format: %w", err)
	}
	d := &Decoder{
		maxPayload: int(cfg.MaxPayloadSize),
		minTS:      cfg.MinTimestamp.UnixMicro(),
		maxFuture:  int64(cfg.MaxFuture),
		in:         newInterner(cfg.InternSize),
		sensors:    newSensorCache(cfg.InternSize),
		num:        make([]byte, 0, 64),
		vals:       make([]namedValue, 0, 16),
	}
	if d.auto, err = compilePlan(nil, def); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	for i := range cfg.Mappings {
		pl, err := compilePlan(&cfg.Mappings[i], def)
		if err != nil {
			return nil, fmt.Errorf("decode: mappings[%d]: %w", i, err)
		}
		d.plans = append(d.plans, pl)
	}
	for _, p := range cfg.TopicPatterns {
		f, err := compileFilter(p)
		if err != nil {
			return nil, fmt.Errorf("decode: topic_patterns: %w", err)
		}
		d.patterns = append(d.patterns, f)
	}
	d.scanFn = d.scanField
	d.reg.Store(reg)
	return d, nil
}

// scan records the fields of obj that the zero-configuration rules read (the first of each name).
func (d *Decoder) scan(obj *fastjson.Value) {
	d.found, d.mask = [numSlots]*fastjson.Value{}, pathBit
	o, _ := obj.Object()
	o.Visit(d.scanFn)
}

func (d *Decoder) scanField(k []byte, v *fastjson.Value) {
	if i := autoSlot(b2s(k)); i >= 0 && d.found[i] == nil {
		d.found[i] = v
		d.mask |= 1 << i
	}
}

// get returns the value at p: from the fast scan, or from root on the general path.
func (d *Decoder) get(root *fastjson.Value, p *fieldPath) jval {
	if d.fast {
		sp := &d.fs.slots[p.fslot]
		return jval{kind: sp.kind, b: d.fs.s[sp.start:sp.end]}
	}
	return d.getSlow(root, p)
}

// absent reports cheaply (inlined) that the fast scan did not see p, so get need not be called.
func (d *Decoder) absent(p *fieldPath) bool { return d.fast && d.fs.slots[p.fslot].kind == kAbsent }

func (d *Decoder) getSlow(root *fastjson.Value, p *fieldPath) jval {
	x := d.lookup(root, p)
	if x == nil {
		return jval{}
	}
	switch t := x.Type(); t {
	case fastjson.TypeString:
		b, _ := x.StringBytes()
		return jval{kind: kString, b: b}
	case fastjson.TypeNumber, fastjson.TypeObject:
		return jval{kind: kindOf(t), v: x}
	default:
		return jval{kind: kindOf(t)}
	}
}

// numText returns a number's literal. On the general path it is copied to d.num, so it is valid until
// the next numText.
func (d *Decoder) numText(j *jval) []byte {
	if j.v == nil {
		return j.b
	}
	d.num = j.v.MarshalTo(d.num[:0])
	return d.num
}

// lookup returns the value at p in root, or nil (general path).
func (d *Decoder) lookup(root *fastjson.Value, p *fieldPath) *fastjson.Value {
	if p.slot >= 0 && len(p.segs) == 1 {
		return d.found[p.slot]
	}
	return d.lookupPath(root, p)
}

func (d *Decoder) lookupPath(root *fastjson.Value, p *fieldPath) *fastjson.Value {
	if p.slot < 0 {
		return root.Get(p.segs...)
	}
	if x := d.found[p.slot]; x != nil {
		return x.Get(p.segs[1:]...)
	}
	return nil
}

// present returns paths, or nil when the scan saw none of the fields they start with.
func (d *Decoder) present(paths []fieldPath, mask uint32) []fieldPath {
	if mask&d.mask == 0 {
		return nil
	}
	return paths
}

// SetRegistry makes the next Decode check sensors against reg. Safe from any goroutine.
func (d *Decoder) SetRegistry(reg *sensor.Registry) { d.reg.Store(reg) }

// Decode appends the readings of one message to dst and returns it. topic is the MQTT topic (or the
// source's equivalent), receivedAt the receipt time in Unix nanoseconds (≤ 0: unknown, and then no
// timestamp is "in the future"). A message that cannot be decoded returns dst unchanged and an *Error
// naming the reason; a message is decoded whole or not at all. The strings in the readings stay valid
// after Decode returns; payload and topic are not retained.
func (d *Decoder) Decode(dst []Reading, topic string, payload []byte, receivedAt int64) ([]Reading, error) {
	if len(payload) == 0 {
		return dst, &Error{Reason: ReasonEmptyPayload, Detail: "the payload has no bytes"}
	}
	if len(payload) > d.maxPayload {
		return dst, &Error{Reason: ReasonTooLarge, Detail: fmt.Sprintf("the payload has %d bytes, over max_payload_size %d", len(payload), d.maxPayload)}
	}
	if reg := d.reg.Load(); reg != d.sensors.reg {
		d.sensors.use(reg)
		d.lastSensor = sensorRef{}
	}
	pl, parts := d.planFor(topic)
	n0 := len(dst)
	if pl.fastOK && !d.noFast {
		var e *Error
		read := d.fs.run(payload)
		if read {
			d.fast = true
			dst, e = d.object(dst, nil, pl, &parts, receivedAt)
			d.fast = false
		}
		d.fs.s = nil // keep no reference to the caller's payload
		if read {
			if e != nil {
				return dst[:n0], e
			}
			return dst, nil
		}
	}
	root, err := d.parser.ParseBytes(payload)
	if err != nil {
		if isBlank(payload) {
			return dst, &Error{Reason: ReasonEmptyPayload, Detail: "the payload is only white space"}
		}
		return dst, &Error{Reason: ReasonInvalidJSON, Detail: truncate(err.Error(), 2*maxQuoted)}
	}
	switch root.Type() {
	case fastjson.TypeObject:
		var e *Error
		if dst, e = d.object(dst, root, pl, &parts, receivedAt); e != nil {
			return dst[:n0], e
		}
		return dst, nil
	case fastjson.TypeArray:
		elems, _ := root.Array()
		if len(elems) == 0 {
			return dst, &Error{Reason: ReasonNotAnObject, Detail: "the payload is an empty array"}
		}
		for i, el := range elems {
			if t := el.Type(); t != fastjson.TypeObject {
				return dst[:n0], &Error{Reason: ReasonNotAnObject, Detail: fmt.Sprintf("the payload is an array whose element %d is %s, not an object", i, typeName(t))}
			}
			var e *Error
			if dst, e = d.object(dst, el, pl, &parts, receivedAt); e != nil {
				e.Detail = fmt.Sprintf("element %d: %s", i, e.Detail)
				return dst[:n0], e
			}
		}
		return dst, nil
	default:
		return dst, &Error{Reason: ReasonNotAnObject, Detail: fmt.Sprintf("the payload is %s, not an object", typeName(root.Type()))}
	}
}

// planFor returns the first mapping whose topic matches, else the zero-configuration rules with the
// parts of the first topic pattern that matches.
func (d *Decoder) planFor(topic string) (*plan, topicParts) {
	var parts topicParts
	for i := range d.plans {
		if d.plans[i].filter.match(topic, &parts) {
			return &d.plans[i], parts
		}
	}
	for i := range d.patterns {
		if d.patterns[i].match(topic, &parts) {
			break
		}
	}
	return &d.auto, parts
}

// object decodes one JSON object: values first, then sensor id, timestamp, metric and unit.
func (d *Decoder) object(dst []Reading, root *fastjson.Value, pl *plan, parts *topicParts, receivedAt int64) ([]Reading, *Error) {
	switch {
	case d.fast:
		d.mask = d.fs.mask
	case pl.scan:
		d.scan(root)
	default:
		d.mask = ^uint32(0)
	}
	if e := d.values(root, pl); e != nil {
		return dst, e
	}
	sref, e := d.sensorID(root, pl, parts)
	if e != nil {
		return dst, e
	}
	ts, flags, e := d.timestamp(root, pl, receivedAt)
	if e != nil {
		return dst, e
	}
	metric, e := d.text(root, d.present(pl.metric, pl.metricMask), pl.fixedMetric, parts.metric, "metric", &d.lastMetric)
	if e != nil {
		return dst, e
	}
	unit, e := d.text(root, d.present(pl.unit, pl.unitMask), pl.fixedUnit, parts.unit, "unit", &d.lastUnit)
	if e != nil {
		return dst, e
	}
	id, s := sref.id, sref.s
	if metric == "" {
		metric = "value"
		if s != nil && s.Type != "" {
			metric = s.Type
		}
	}
	for _, nv := range d.vals {
		r := Reading{SensorID: id, Metric: nv.metric, TS: ts, Value: nv.v, Unit: unit, Flags: flags}
		if r.Metric == "" {
			r.Metric = metric
		}
		switch {
		case s == nil:
			r.Flags |= FlagUnknownSensor
		case s.Type == "" || s.Type == r.Metric: // the registry describes this metric
			if r.Unit == "" {
				r.Unit = s.Unit
			} else if s.Unit != "" && s.Unit != r.Unit {
				r.Flags |= FlagUnitMismatch
			}
			if !s.InRange(r.Value) {
				r.Flags |= FlagOutOfRange
			}
		}
		dst = append(dst, r)
	}
	return dst, nil
}

func fmtUS(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func typeName(t fastjson.Type) string { return kindName(kindOf(t)) }

func kindName(k jkind) string {
	switch k {
	case kObject:
		return "an object"
	case kArray:
		return "an array"
	case kString:
		return "text"
	case kNumber:
		return "a number"
	case kTrue, kFalse:
		return "a boolean"
	}
	return "null"
}

// b2s views b as a string without copying; the string must not outlive b's next change.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// truncate cuts s to about n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
