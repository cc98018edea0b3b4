package decode

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-project/sluice/internal/config"
)

// Config is the decode section: limits, the zero-configuration rules, and mappings for other shapes.
type Config struct {
	MaxPayloadSize  config.Bytes  `yaml:"max_payload_size" doc:"Largest payload decoded; a larger one goes to quarantine/ as too_large (raw/ keeps it whole)."`
	MinTimestamp    time.Time     `yaml:"min_timestamp" doc:"Readings timed before this instant (RFC 3339) go to quarantine/ as timestamp_too_old."`
	MaxFuture       time.Duration `yaml:"max_future" doc:"Readings timed more than this after sluice received them go to quarantine/ as timestamp_in_future. 0 = no limit."`
	TimestampFormat string        `yaml:"timestamp_format" doc:"How timestamps are read when no mapping says otherwise: auto (ISO 8601 or RFC 3339 text, a zone-less one read as UTC; numbers and numeric text as Unix seconds, ms, µs or ns by magnitude), rfc3339 (text with a zone), iso8601 (text, zone optional: UTC), unix_s, unix_ms, unix_us, unix_ns, or a Go time layout such as \"02/01/2006 15:04:05\"."`
	TopicPatterns   []string      `yaml:"topic_patterns" doc:"Topic patterns tried, in order, when no mapping matches: MQTT filters whose +sensor_id, +metric and +unit levels give the sensor id, metric and unit when the payload lacks them (+name or #name levels with other names are matched and ignored)."`
	Mappings        []Mapping     `yaml:"mappings" doc:"Rules for payload shapes the zero-configuration rules do not read. The first mapping whose topic matches applies; a message no mapping matches is read by the zero-configuration rules. Keys: topic, sensor_id, timestamp, timestamp_format, value, values, metric, fixed_metric, unit, fixed_unit (see the package documentation)."`
	InternSize      int           `yaml:"intern_size" doc:"Most distinct sensor ids the registry does not list (listed ones use the registry's own string) and, in a second table, metrics and units, kept as shared strings, so a steady stream allocates nothing; past it a table starts afresh (correct, just slower). About 100 bytes each."`
}

// Mapping reads one payload shape. Field paths are dotted ("data.temp", "readings.0.v"); "" means the
// zero-configuration field names, "-" means none.
type Mapping struct {
	Topic           string   `yaml:"topic" doc:"MQTT topic filter (+, # wildcards). A level written +name or #name names its part: +sensor_id, +metric and +unit are used when the payload lacks them. Example: devices/+sensor_id/#."`
	SensorID        string   `yaml:"sensor_id,omitempty" doc:"Path of the sensor id (string or number)."`
	Timestamp       string   `yaml:"timestamp,omitempty" doc:"Path of the event time; \"-\": always use the receipt time."`
	TimestampFormat string   `yaml:"timestamp_format,omitempty" doc:"As decode.timestamp_format; \"\" = that setting."`
	Value           string   `yaml:"value,omitempty" doc:"Path of the value (number, numeric string or boolean)."`
	Values          []string `yaml:"values,omitempty" doc:"Paths of several values, one reading each, named by the path's last part; \"*\" = every numeric field, \"data.*\" = every numeric field of data."`
	Metric          string   `yaml:"metric,omitempty" doc:"Path of the metric name."`
	FixedMetric     string   `yaml:"fixed_metric,omitempty" doc:"A metric name for every reading of this mapping."`
	Unit            string   `yaml:"unit,omitempty" doc:"Path of the unit."`
	FixedUnit       string   `yaml:"fixed_unit,omitempty" doc:"A unit for every reading of this mapping."`
}

// mappingKeys are the YAML keys of Mapping, for strict decoding.
var mappingKeys = []string{"topic", "sensor_id", "timestamp", "timestamp_format", "value", "values", "metric", "fixed_metric", "unit", "fixed_unit"}

// UnmarshalYAML decodes a mapping and rejects unknown keys, which the configuration loader cannot see
// inside lists.
func (m *Mapping) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: decode.mappings: each mapping is an object with keys %s", n.Line, strings.Join(mappingKeys, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(mappingKeys, k.Value) {
			return fmt.Errorf("line %d: decode.mappings: unknown key %q; keys are %s", k.Line, k.Value, strings.Join(mappingKeys, ", "))
		}
	}
	type plain Mapping
	return n.Decode((*plain)(m))
}

// DefaultTopicPatterns are the zero-configuration topic patterns.
func DefaultTopicPatterns() []string {
	return []string{"plant/+site/+line/+sensor_id/+metric", "sensors/+sensor_id", "devices/+sensor_id/#"}
}

// DefaultConfig returns the zero-configuration rules: 64KiB payloads, timestamps from 2000-01-01 up to
// an hour after receipt, read in any common format.
func DefaultConfig() Config {
	return Config{
		MaxPayloadSize:  64 << 10,
		MinTimestamp:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		MaxFuture:       time.Hour,
		TimestampFormat: "auto",
		TopicPatterns:   DefaultTopicPatterns(),
		InternSize:      200_000,
	}
}

// Validate implements config.Validator.
func (c Config) Validate() config.Errors {
	var es config.Errors
	es.Check(c.MaxPayloadSize > 0, "max_payload_size", fmt.Sprintf("%d is not a size", c.MaxPayloadSize), "use a size such as 64KiB")
	es.Check(c.MaxPayloadSize <= 1<<30, "max_payload_size", fmt.Sprintf("%s is over 1GiB", c.MaxPayloadSize), "use a size such as 64KiB")
	es.Check(c.MaxFuture >= 0, "max_future", fmt.Sprintf("%s is negative", c.MaxFuture), "use a duration such as 1h, or 0 for no limit")
	es.Check(c.MinTimestamp.Year() >= 1 && c.MinTimestamp.Year() <= 9999, "min_timestamp", "is outside the years 1 to 9999", "use an instant such as 2000-01-01T00:00:00Z")
	es.Check(c.InternSize >= 1000, "intern_size", fmt.Sprintf("%d is too small to help", c.InternSize), "use at least 1000 (default 200000)")
	if _, err := parseTSFormat(c.TimestampFormat); err != nil {
		es.Add("timestamp_format", err.Error(), tsFormatFix)
	}
	for i, p := range c.TopicPatterns {
		if _, err := compileFilter(p); err != nil {
			es.Add(fmt.Sprintf("topic_patterns[%d]", i), err.Error(), topicFix)
		}
	}
	for i, m := range c.Mappings {
		m.validate(&es, fmt.Sprintf("mappings[%d].", i))
	}
	return es
}

const (
	tsFormatFix = "use auto, rfc3339, iso8601, unix_s, unix_ms, unix_us, unix_ns, or a Go layout such as 2006-01-02 15:04:05"
	topicFix    = "write an MQTT filter such as devices/+sensor_id/# (+ and # stand alone in their level; # comes last)"
	pathFix     = "write a dotted field path such as data.temperature, \"\" for the default field names, or - for none"
)

func (m Mapping) validate(es *config.Errors, key string) {
	if m.Topic == "" {
		es.Add(key+"topic", "is empty", topicFix)
	} else if _, err := compileFilter(m.Topic); err != nil {
		es.Add(key+"topic", err.Error(), topicFix)
	}
	for _, f := range []struct{ name, path string }{
		{"sensor_id", m.SensorID}, {"timestamp", m.Timestamp}, {"value", m.Value}, {"metric", m.Metric}, {"unit", m.Unit},
	} {
		if err := checkPath(f.path, false); err != nil {
			es.Add(key+f.name, err.Error(), pathFix)
		}
	}
	if m.TimestampFormat != "" {
		if _, err := parseTSFormat(m.TimestampFormat); err != nil {
			es.Add(key+"timestamp_format", err.Error(), tsFormatFix)
		}
	}
	for j, p := range m.Values {
		if err := checkPath(p, true); err != nil || p == "" || p == "-" {
			problem := fmt.Sprintf("%q is not a field path", p)
			if err != nil {
				problem = err.Error()
			}
			es.Add(fmt.Sprintf("%svalues[%d]", key, j), problem, "write a dotted field path such as data.temperature, or data.* / * for every numeric field")
		}
	}
	es.Check(m.Value != "-" || len(m.Values) > 0, key+"value", "is - (none), so no message would have a value", "name the value's field, or \"\" for the default names, or list values")
	if len(m.Values) > 0 {
		es.Check(m.Value == "", key+"value", "is set together with values", "use value for one reading per message, or values for several, not both")
		es.Check(m.Metric == "" && m.FixedMetric == "", key+"metric", "is set together with values, whose readings are named by their fields", "remove metric and fixed_metric, or use value instead of values")
	}
	es.Check(m.Metric == "" || m.FixedMetric == "", key+"fixed_metric", "is set together with metric", "keep one: metric (a field path) or fixed_metric (a constant)")
	es.Check(m.Unit == "" || m.FixedUnit == "", key+"fixed_unit", "is set together with unit", "keep one: unit (a field path) or fixed_unit (a constant)")
	es.Check(len(m.FixedMetric) <= maxText, key+"fixed_metric", fmt.Sprintf("is over %d bytes", maxText), "use a short metric name")
	es.Check(len(m.FixedUnit) <= maxText, key+"fixed_unit", fmt.Sprintf("is over %d bytes", maxText), "use a short unit")
}

// checkPath reports whether p is "", "-", or dotted non-empty segments (a last segment "*" only when
// wildcard is allowed).
func checkPath(p string, wildcard bool) error {
	if p == "" || p == "-" {
		return nil
	}
	segs := strings.Split(p, ".")
	for i, s := range segs {
		if s == "" {
			return fmt.Errorf("%q has an empty part", p)
		}
		if s == "*" && (!wildcard || i != len(segs)-1) {
			return fmt.Errorf("%q: * may only end a path in values", p)
		}
	}
	return nil
}
