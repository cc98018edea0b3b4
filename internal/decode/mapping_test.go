package decode

import (
	"reflect"
	"testing"
)

func TestMappings(t *testing.T) {
	ts := us("2026-11-22T17:40:25Z")
	u := FlagUnknownSensor
	cfg := DefaultConfig()
	cfg.Mappings = []Mapping{
		{Topic: "factory/+sensor_id/telemetry", Timestamp: "meta.time", TimestampFormat: "unix_ms", Values: []string{"data.*"}, FixedUnit: "C"},
		{Topic: "lab/+site/#sensor_id", Value: "reading.val", Metric: "reading.kind", Unit: "reading.u", Timestamp: "at", TimestampFormat: "02/01/2006 15:04:05"},
		{Topic: "fixed/+sensor_id", FixedMetric: "flow", Timestamp: "-"},
		{Topic: "list/+sensor_id", Values: []string{"a", "b.c", "missing"}},
		{Topic: "star/+sensor_id", Values: []string{"*"}},
		{Topic: "units/+sensor_id/+metric/+unit"},
		{Topic: "arr/+sensor_id", Value: "samples.1"},
		{Topic: "strict/+sensor_id", SensorID: "dev", Metric: "kind", Unit: "u", Value: "val"},
		{Topic: "factory/#"}, // shadowed for factory/x/telemetry by the first mapping
	}
	cases := []struct {
		name    string
		topic   string
		payload string
		want    []Reading
		reason  Reason
	}{
		{"values of a nested object, ms timestamp at a path, fixed unit", "factory/m-1/telemetry",
			`{"meta":{"time":1795369225000},"data":{"temp":21.5,"rpm":1200,"label":"x"}}`,
			[]Reading{{"m-1", "temp", ts, 21.5, "C", u}, {"m-1", "rpm", ts, 1200, "C", u}}, ""},
		{"first matching mapping wins", "factory/x/other", `{"sensor_id":"s","ts":1795369225,"value":5}`,
			[]Reading{{"s", "value", ts, 5, "", u}}, ""},
		{"named # part and a Go layout", "lab/zurich/bench/7", `{"at":"22/11/2026 17:40:25","reading":{"val":"3.5","kind":"ph","u":"pH"}}`,
			[]Reading{{"bench/7", "ph", ts, 3.5, "pH", u}}, ""},
		{"receipt time forced, fixed metric beats payload", "fixed/f1", `{"value":2,"timestamp":1795369225,"metric":"x"}`,
			[]Reading{{"f1", "flow", recv / 1000, 2, "", u | FlagTSFromReceipt}}, ""},
		{"listed values, missing ones skipped", "list/l1", `{"ts":1795369225,"a":1,"b":{"c":"2"}}`,
			[]Reading{{"l1", "a", ts, 1, "", u}, {"l1", "c", ts, 2, "", u}}, ""},
		{"star skips fields read as sensor, time, metric, unit", "star/s1", `{"sensor_id":"s2","ts":1795369225,"unit":"V","x":1,"y":2,"lat":3}`,
			[]Reading{{"s2", "x", ts, 1, "V", u}, {"s2", "y", ts, 2, "V", u}}, ""},
		{"metric and unit from the topic", "units/u1/pressure/bar", `{"ts":1795369225,"v":7}`,
			[]Reading{{"u1", "pressure", ts, 7, "bar", u}}, ""},
		{"array index in a path", "arr/a1", `{"ts":1795369225,"samples":[1,2,3]}`,
			[]Reading{{"a1", "value", ts, 2, "", u}}, ""},
		{"zero-config rules when no mapping matches", "plant/a/l/p/temp", `{"ts":1795369225,"v":1}`,
			[]Reading{{"p", "temp", ts, 1, "", u}}, ""},
		{"listed values all missing", "list/l1", `{"ts":1795369225,"z":1}`, nil, ReasonMissingValue},
		{"listed value not a number", "list/l1", `{"ts":1795369225,"a":"x"}`, nil, ReasonValueNotNumber},
		{"values object is not an object", "factory/m-1/telemetry", `{"meta":{"time":1795369225000},"data":[1]}`, nil, ReasonValueNotNumber},
		{"configured ms timestamp given as text", "factory/m-1/telemetry", `{"meta":{"time":"2026-11-22T17:40:25Z"},"data":{"a":1}}`, nil, ReasonBadTimestamp},
		{"layout mismatch", "lab/z/b", `{"at":"2026-11-22","reading":{"val":1}}`, nil, ReasonBadTimestamp},
		{"explicit sensor path of the wrong type", "strict/s", `{"dev":{"a":1},"val":1}`, nil, ReasonBadSensorID},
		{"explicit metric path of the wrong type", "strict/s", `{"dev":"d","kind":5,"val":1}`, nil, ReasonBadField},
		{"explicit unit path of the wrong type", "strict/s", `{"dev":"d","u":true,"val":1}`, nil, ReasonBadField},
		{"explicit sensor path absent: topic part", "strict/s", `{"val":1}`, []Reading{{"s", "value", recv / 1000, 1, "", u | FlagTSFromReceipt}}, ""},
		{"explicit value path absent", "strict/s", `{"value":1}`, nil, ReasonMissingValue},
	}
	d := newDecoder(t, cfg, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := d.Decode(nil, c.topic, []byte(c.payload), recv)
			if c.reason != "" {
				if err == nil {
					t.Fatalf("decoded %+v, want %s", got, c.reason)
				}
				if r := reasonOf(t, err); r != c.reason {
					t.Fatalf("reason %s (%v), want %s", r, err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestTopicFilter(t *testing.T) {
	cases := []struct {
		filter, topic string
		match         bool
		parts         topicParts
	}{
		{"a/b", "a/b", true, topicParts{}},
		{"a/b", "a/b/c", false, topicParts{}},
		{"a/b/c", "a/b", false, topicParts{}},
		{"a/+", "a/b", true, topicParts{}},
		{"a/+", "a/", true, topicParts{}},
		{"a/+", "a", false, topicParts{}},
		{"a/#", "a", true, topicParts{}},
		{"a/#", "a/b/c", true, topicParts{}},
		{"#", "a/b", true, topicParts{}},
		{"#", "$SYS/x", false, topicParts{}},
		{"+/x", "$SYS/x", false, topicParts{}},
		{"$SYS/+", "$SYS/x", true, topicParts{}},
		{"+sensor_id/+metric/+unit", "s/m/u", true, topicParts{"s", "m", "u"}},
		{"d/+sensor_id/#", "d/s1/x/y", true, topicParts{sensor: "s1"}},
		{"d/#sensor_id", "d/s1/x", true, topicParts{sensor: "s1/x"}},
		{"d/#sensor_id", "d", true, topicParts{}},
		{"plant/+site/+line/+sensor_id/+metric", "plant/a/line2/pump-07/temperature", true, topicParts{"pump-07", "temperature", ""}},
		{"plant/+site/+line/+sensor_id/+metric", "plant/a/line2/pump-07", false, topicParts{}},
	}
	for _, c := range cases {
		f, err := compileFilter(c.filter)
		if err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		var p topicParts
		if got := f.match(c.topic, &p); got != c.match || p != c.parts {
			t.Errorf("%q matches %q: %v %+v, want %v %+v", c.filter, c.topic, got, p, c.match, c.parts)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a/b#", "a+/b", "+se-nsor", "+metric/+metric"} {
		if _, err := compileFilter(bad); err == nil {
			t.Errorf("compileFilter(%q) accepted", bad)
		}
	}
}
