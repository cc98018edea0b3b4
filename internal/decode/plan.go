package decode

import (
	"fmt"
	"strings"
)

// fieldPath is a compiled dotted field path.
type fieldPath struct {
	segs     []string
	name     string // dotted, for details
	explicit bool   // configured by a mapping: a value of the wrong type is an error, not "absent"
	slot     int    // ≥ 0: a zero-configuration path whose first part the object scan finds (autoSlot)
	fslot    int    // ≥ 0: the fast scanner's slot for the whole path
}

func newPath(p string, explicit bool) fieldPath {
	return fieldPath{segs: strings.Split(p, "."), name: p, explicit: explicit, slot: -1, fslot: -1}
}

func autoPaths(ps ...string) []fieldPath {
	out := make([]fieldPath, len(ps))
	for i, p := range ps {
		out[i] = newPath(p, false)
		out[i].slot = autoSlot(out[i].segs[0])
		switch {
		case len(out[i].segs) == 1:
			out[i].fslot = out[i].slot
		case p == "metadata.type":
			out[i].fslot = fslotMetaType
		case p == "metadata.unit":
			out[i].fslot = fslotMetaUnit
		}
	}
	return out
}

// autoSlotNames are the top-level fields the zero-configuration rules read, numbered so that one pass
// over an object finds them all (instead of one linear search per candidate name).
var autoSlotNames = [numSlots]string{
	"sensor_id", "sensorId", "sensor", "device_id", "deviceId", "id", "timestamp", "ts", "time", "t",
	"value", "v", "val", "metric", "metric_type", "type", "measurement", "unit", "units", "metadata",
	"values", "readings",
}

const numSlots = 22

// autoSlot returns k's index in autoSlotNames, or -1.
func autoSlot(k string) int {
	switch k {
	case "sensor_id":
		return 0
	case "sensorId":
		return 1
	case "sensor":
		return 2
	case "device_id":
		return 3
	case "deviceId":
		return 4
	case "id":
		return 5
	case "timestamp":
		return 6
	case "ts":
		return 7
	case "time":
		return 8
	case "t":
		return 9
	case "value":
		return 10
	case "v":
		return 11
	case "val":
		return 12
	case "metric":
		return 13
	case "metric_type":
		return 14
	case "type":
		return 15
	case "measurement":
		return 16
	case "unit":
		return 17
	case "units":
		return 18
	case "metadata":
		return 19
	case "values":
		return 20
	case "readings":
		return 21
	}
	return -1
}

// The zero-configuration field names, in order of preference.
var (
	autoSensorNames = []string{"sensor_id", "sensorId", "sensor", "device_id", "deviceId", "id"}
	autoTSNames     = []string{"timestamp", "ts", "time", "t"}
	autoValueNames  = []string{"value", "v", "val"}
	autoMetricNames = []string{"metric", "metric_type", "type", "metadata.type", "measurement"}
	autoUnitNames   = []string{"unit", "metadata.unit", "units"}
	// objects whose numeric fields are readings when a message has no value field
	autoNestedValues = []string{"values", "readings"}
	// numeric fields that describe the sensor rather than measure something
	locationNames = []string{"lat", "lng", "lon", "latitude", "longitude"}
)

// valueSel is one entry of a mapping's values list.
type valueSel struct {
	path   fieldPath // the field, or for "x.*" the object x (no segments: the payload itself)
	all    bool      // every numeric field of path
	metric string    // the reading's metric: the path's last part
}

// plan is a compiled mapping, or the zero-configuration rules.
type plan struct {
	filter                 *topicFilter // nil for the zero-configuration rules
	sensor, ts, value      []fieldPath
	metric, unit           []fieldPath
	tsFormat               tsFormat
	values                 []valueSel // a mapping's values list
	autoMulti              bool       // no value field: every numeric field (and those of "values") is a reading
	fixedMetric, fixedUnit string
	nested                 []fieldPath // autoMulti: objects whose numeric fields are values too
	scan                   bool        // some path uses a slot: scan the object first
	fastOK                 bool        // every path has an fslot: the fast scanner can read its messages
	// per field, the slots its paths may find (pathBit for other paths): a field none of whose
	// slots the scan saw, and with no other path, is absent without looking
	sensorMask, tsMask, valueMask, metricMask, unitMask, nestedMask uint32
	reserved                                                        map[string]bool // top-level fields never read as values by "*"
	sensorList, valueList                                           string          // field names, for details
}

// pathsFor compiles a mapping's path setting: "" the zero-configuration names, "-" none.
func pathsFor(p string, auto []string) []fieldPath {
	switch p {
	case "":
		return autoPaths(auto...)
	case "-":
		return nil
	}
	return []fieldPath{newPath(p, true)}
}

// compilePlan compiles m (nil: the zero-configuration rules) with the default timestamp format def.
func compilePlan(m *Mapping, def tsFormat) (plan, error) {
	if m == nil {
		m = &Mapping{}
	}
	pl := plan{
		sensor: pathsFor(m.SensorID, autoSensorNames), ts: pathsFor(m.Timestamp, autoTSNames),
		metric: pathsFor(m.Metric, autoMetricNames), unit: pathsFor(m.Unit, autoUnitNames),
		fixedMetric: m.FixedMetric, fixedUnit: m.FixedUnit, tsFormat: def,
	}
	if m.Topic != "" {
		f, err := compileFilter(m.Topic)
		if err != nil {
			return pl, fmt.Errorf("topic %w", err)
		}
		pl.filter = &f
	}
	if m.TimestampFormat != "" {
		f, err := parseTSFormat(m.TimestampFormat)
		if err != nil {
			return pl, err
		}
		pl.tsFormat = f
	}
	if len(m.Values) > 0 {
		for _, v := range m.Values {
			if v == "*" {
				pl.values = append(pl.values, valueSel{path: fieldPath{slot: -1, fslot: -1}, all: true})
				continue
			}
			if obj, ok := strings.CutSuffix(v, ".*"); ok {
				pl.values = append(pl.values, valueSel{path: newPath(obj, true), all: true})
				continue
			}
			p := newPath(v, true)
			pl.values = append(pl.values, valueSel{path: p, metric: p.segs[len(p.segs)-1]})
		}
		pl.valueList = strings.Join(m.Values, ", ")
	} else {
		pl.value = pathsFor(m.Value, autoValueNames)
		pl.autoMulti = m.Value == ""
		if pl.autoMulti {
			pl.nested = autoPaths(autoNestedValues...)
		}
		pl.valueList = names(pl.value)
	}
	pl.reserved = map[string]bool{}
	for _, ps := range [][]fieldPath{pl.sensor, pl.ts, pl.metric, pl.unit} {
		for _, p := range ps {
			pl.reserved[p.segs[0]] = true
		}
	}
	for _, n := range locationNames {
		pl.reserved[n] = true
	}
	for _, ps := range [][]fieldPath{pl.sensor, pl.ts, pl.value, pl.metric, pl.unit, pl.nested} {
		for _, p := range ps {
			pl.scan = pl.scan || p.slot >= 0
		}
	}
	pl.fastOK = pl.values == nil
	for _, ps := range [][]fieldPath{pl.sensor, pl.ts, pl.value, pl.metric, pl.unit, pl.nested} {
		for _, p := range ps {
			pl.fastOK = pl.fastOK && p.fslot >= 0
		}
	}
	pl.sensorMask, pl.tsMask, pl.valueMask = slotMask(pl.sensor), slotMask(pl.ts), slotMask(pl.value)
	pl.metricMask, pl.unitMask, pl.nestedMask = slotMask(pl.metric), slotMask(pl.unit), slotMask(pl.nested)
	pl.sensorList = names(pl.sensor)
	return pl, nil
}

// pathBit stands in a mask for the paths the scan does not find (looked up every time).
const pathBit = 1 << 31

func slotMask(ps []fieldPath) uint32 {
	var m uint32
	for _, p := range ps {
		if p.slot < 0 {
			m |= pathBit
		} else {
			m |= 1 << p.slot
		}
	}
	return m
}

func names(ps []fieldPath) string {
	if len(ps) == 0 {
		return "(none)"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.name
	}
	return strings.Join(s, ", ")
}
