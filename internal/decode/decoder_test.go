package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/testkit"
)

// recv is the receipt time used by most tests: 20 minutes after the fixtures' event times.
var recv = time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC).UnixNano()

func us(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func newDecoder(t testing.TB, cfg Config, reg *sensor.Registry) *Decoder {
	t.Helper()
	d, err := New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// decodeOK decodes one message that must succeed.
func decodeOK(t *testing.T, d *Decoder, topic, payload string) []Reading {
	t.Helper()
	got, err := d.Decode(nil, topic, []byte(payload), recv)
	if err != nil {
		t.Fatalf("Decode(%q, %s): %v", topic, payload, err)
	}
	return got
}

// reasonOf returns the Reason of err, failing unless err is an *Error.
func reasonOf(t *testing.T, err error) Reason {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Detail == "" {
		t.Fatalf("error %v has no detail", err)
	}
	return e.Reason
}

func TestDecodeFixtures(t *testing.T) {
	f, err := os.Open(filepath.Join(testkit.RepoRoot(t), "testdata", "fixtures", "payload-variants.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unknown := FlagUnknownSensor
	want := [][]Reading{
		{{SensorID: "1", Metric: "temperature", TS: us("2026-11-22T17:40:25.123456Z"), Value: 23, Unit: "C", Flags: unknown}},
		{{SensorID: "Sensor 3", Metric: "temperature", TS: us("2026-11-22T17:40:25Z"), Value: 31.42, Unit: "C", Flags: unknown}},
		{{SensorID: "pump-07", Metric: "vibration", TS: us("2026-11-22T17:40:25.5Z"), Value: 4.2, Unit: "", Flags: unknown}},
		{{SensorID: "pump-07", Metric: "temperature", TS: us("2026-11-22T17:40:25.123Z"), Value: 71.3, Unit: "", Flags: unknown}},
	}
	d := newDecoder(t, DefaultConfig(), sensor.Empty())
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		var line struct {
			Topic   string          `json:"topic"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			t.Fatalf("fixture has more than %d lines", len(want))
		}
		got := decodeOK(t, d, line.Topic, string(line.Payload))
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("fixture %d (%s):\n got %+v\nwant %+v", i, line.Topic, got, want[i])
		}
	}
	if i != len(want) {
		t.Fatalf("fixture has %d lines, want %d", i, len(want))
	}
}

func TestDecodeShapes(t *testing.T) {
	ts := us("2026-11-22T17:40:25Z")
	u := FlagUnknownSensor
	cases := []struct {
		name    string
		topic   string
		payload string
		want    []Reading
	}{
		{"sensorId camel case", "x", `{"sensorId":"a","ts":"2026-11-22T17:40:25Z","val":1.5}`, []Reading{{"a", "value", ts, 1.5, "", u}}},
		{"sensor key", "x", `{"sensor":"a","time":"2026-11-22T17:40:25Z","v":2}`, []Reading{{"a", "value", ts, 2, "", u}}},
		{"device_id and t", "x", `{"device_id":"d","t":1795369225,"value":3}`, []Reading{{"d", "value", ts, 3, "", u}}},
		{"deviceId", "x", `{"deviceId":"d","t":1795369225,"value":3}`, []Reading{{"d", "value", ts, 3, "", u}}},
		{"plain id", "x", `{"id":"d","timestamp":1795369225,"value":3}`, []Reading{{"d", "value", ts, 3, "", u}}},
		{"numeric sensor id keeps its text", "x", `{"sensor_id":17,"timestamp":1795369225,"value":3}`, []Reading{{"17", "value", ts, 3, "", u}}},
		{"sensor_id preferred over id", "x", `{"id":"msg-1","sensor_id":"s","timestamp":1795369225,"value":3}`, []Reading{{"s", "value", ts, 3, "", u}}},
		{"empty sensor_id falls back to id", "x", `{"sensor_id":"","id":"s","timestamp":1795369225,"value":3}`, []Reading{{"s", "value", ts, 3, "", u}}},
		{"null sensor_id falls back to topic", "sensors/S9", `{"sensor_id":null,"timestamp":1795369225,"value":3}`, []Reading{{"S9", "value", ts, 3, "", u}}},
		{"non-text id field skipped in zero config", "sensors/S9", `{"id":{"x":1},"timestamp":1795369225,"value":3}`, []Reading{{"S9", "value", ts, 3, "", u}}},
		{"metric field", "x", `{"sensor_id":"a","metric":"rpm","timestamp":1795369225,"value":3}`, []Reading{{"a", "rpm", ts, 3, "", u}}},
		{"measurement field", "x", `{"sensor_id":"a","measurement":"rpm","timestamp":1795369225,"value":3}`, []Reading{{"a", "rpm", ts, 3, "", u}}},
		{"units field", "x", `{"sensor_id":"a","units":"bar","timestamp":1795369225,"value":3}`, []Reading{{"a", "value", ts, 3, "bar", u}}},
		{"metric from topic", "plant/a/l/p1/pressure", `{"ts":1795369225,"v":3}`, []Reading{{"p1", "pressure", ts, 3, "", u}}},
		{"payload metric beats topic", "plant/a/l/p1/pressure", `{"ts":1795369225,"v":3,"metric":"flow"}`, []Reading{{"p1", "flow", ts, 3, "", u}}},
		{"payload sensor beats topic", "plant/a/l/p1/pressure", `{"ts":1795369225,"v":3,"sensor_id":"p2"}`, []Reading{{"p2", "pressure", ts, 3, "", u}}},
		{"devices pattern", "devices/dev-1/telemetry/up", `{"ts":1795369225,"v":3}`, []Reading{{"dev-1", "value", ts, 3, "", u}}},
		{"numeric string value", "x", `{"sensor_id":"a","ts":1795369225,"value":"23.5"}`, []Reading{{"a", "value", ts, 23.5, "", u}}},
		{"numeric string with spaces", "x", `{"sensor_id":"a","ts":1795369225,"value":" -1e3 "}`, []Reading{{"a", "value", ts, -1000, "", u}}},
		{"true is 1", "x", `{"sensor_id":"a","ts":1795369225,"value":true}`, []Reading{{"a", "value", ts, 1, "", u}}},
		{"false is 0", "x", `{"sensor_id":"a","ts":1795369225,"value":false}`, []Reading{{"a", "value", ts, 0, "", u}}},
		{"exact decimal", "x", `{"sensor_id":"a","ts":1795369225,"value":1.5e-3}`, []Reading{{"a", "value", ts, 0.0015, "", u}}},
		{"underflow is zero", "x", `{"sensor_id":"a","ts":1795369225,"value":1e-400}`, []Reading{{"a", "value", ts, 0, "", u}}},
		{"no timestamp: receipt time", "x", `{"sensor_id":"a","value":1}`, []Reading{{"a", "value", recv / 1000, 1, "", u | FlagTSFromReceipt}}},
		{"null timestamp: receipt time", "x", `{"sensor_id":"a","timestamp":null,"value":1}`, []Reading{{"a", "value", recv / 1000, 1, "", u | FlagTSFromReceipt}}},
		{"leading white space", "x", " \n\t{\"sensor_id\":\"a\",\"ts\":1795369225,\"value\":1} \n", []Reading{{"a", "value", ts, 1, "", u}}},
		{"escaped text", "x", `{"sensor_id":"caf\u00e9 \"1\"","ts":1795369225,"value":1,"unit":"\u00b0C"}`, []Reading{{"café \"1\"", "value", ts, 1, "°C", u}}},
		{"multi-value", "x", `{"sensor_id":"a","ts":1795369225,"temperature":21.5,"humidity":40}`,
			[]Reading{{"a", "temperature", ts, 21.5, "", u}, {"a", "humidity", ts, 40, "", u}}},
		{"multi-value skips location and text", "x", `{"sensor_id":"a","ts":1795369225,"lat":1,"lng":2,"status":"ok","temperature":21.5}`,
			[]Reading{{"a", "temperature", ts, 21.5, "", u}}},
		{"multi-value with sensor from topic", "sensors/s-4", `{"temperature":21.5,"humidity":40}`,
			[]Reading{{"s-4", "temperature", recv / 1000, 21.5, "", u | FlagTSFromReceipt}, {"s-4", "humidity", recv / 1000, 40, "", u | FlagTSFromReceipt}}},
		{"nested values object", "x", `{"sensor_id":"a","ts":1795369225,"values":{"temperature":21.5,"co2":400}}`,
			[]Reading{{"a", "temperature", ts, 21.5, "", u}, {"a", "co2", ts, 400, "", u}}},
		{"nested readings object", "x", `{"sensor_id":"a","ts":1795369225,"readings":{"rpm":1200}}`,
			[]Reading{{"a", "rpm", ts, 1200, "", u}}},
		{"value field wins over other numbers", "x", `{"sensor_id":"a","ts":1795369225,"value":1,"rssi":-70}`,
			[]Reading{{"a", "value", ts, 1, "", u}}},
		{"array of objects", "x", `[{"sensor_id":"a","ts":1795369225,"value":1},{"sensor_id":"b","ts":1795369226,"value":2}]`,
			[]Reading{{"a", "value", ts, 1, "", u}, {"b", "value", ts + 1e6, 2, "", u}}},
	}
	d := newDecoder(t, DefaultConfig(), nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decodeOK(t, d, c.topic, c.payload)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDecodeAppendsToDst(t *testing.T) {
	d := newDecoder(t, DefaultConfig(), nil)
	prev := Reading{SensorID: "prev", Metric: "m", Value: 9}
	dst := []Reading{prev}
	dst, err := d.Decode(dst, "x", []byte(`{"sensor_id":"a","ts":1795369225,"temperature":1,"humidity":2}`), recv)
	if err != nil {
		t.Fatal(err)
	}
	if len(dst) != 3 || dst[0] != prev || dst[1].Metric != "temperature" || dst[2].Metric != "humidity" {
		t.Fatalf("dst = %+v", dst)
	}
	// A failing message leaves dst as it was, even when earlier objects of an array decoded.
	before := len(dst)
	dst, err = d.Decode(dst, "x", []byte(`[{"sensor_id":"a","ts":1795369225,"value":1},{"sensor_id":"b","ts":1795369225,"value":"x"}]`), recv)
	if reasonOf(t, err) != ReasonValueNotNumber {
		t.Fatalf("err = %v", err)
	}
	if len(dst) != before {
		t.Fatalf("dst grew to %d on error, want %d", len(dst), before)
	}
	if !strings.HasPrefix(err.Error(), "value_not_number: element 1: ") {
		t.Fatalf("err = %q, want it to name element 1", err)
	}
}

func TestDecodeStringsOutliveParser(t *testing.T) {
	d := newDecoder(t, DefaultConfig(), nil)
	payload := []byte(`{"sensor_id":"s-1","metric":"temp","unit":"C","ts":1795369225,"value":1}`)
	topic := []byte("plant/a/b/x/y")
	got, err := d.Decode(nil, string(topic), payload, recv)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the inputs and decode something else with the same parser.
	for i := range payload {
		payload[i] = 'z'
	}
	for i := range topic {
		topic[i] = 'q'
	}
	if _, err := d.Decode(nil, "y", []byte(`{"sensor_id":"other","metric":"xx","unit":"yy","ts":1795369225,"value":2}`), recv); err != nil {
		t.Fatal(err)
	}
	if r := got[0]; r.SensorID != "s-1" || r.Metric != "temp" || r.Unit != "C" {
		t.Fatalf("reading changed after later use: %+v", r)
	}
	// Topic parts are copied too.
	topic2 := []byte("plant/a/b/pump-9/flow")
	got, err = d.Decode(nil, string(topic2), []byte(`{"v":1}`), recv)
	if err != nil {
		t.Fatal(err)
	}
	copy(topic2, "plant/a/b/XXXX-X/YYYY")
	if got[0].SensorID != "pump-9" || got[0].Metric != "flow" {
		t.Fatalf("topic parts changed: %+v", got[0])
	}
}

func TestRegistryFlags(t *testing.T) {
	reg := sensor.New([]sensor.Sensor{
		{ID: "t1", Type: "temperature", Unit: "C", Min: 0, Max: 45, HasRange: true},
		{ID: "nounit", Type: "pressure", Min: 1, Max: 2, HasRange: true},
		{ID: "untyped", Unit: "V"},
	}, nil)
	ts := us("2026-11-22T17:40:25Z")
	cases := []struct {
		name    string
		payload string
		want    []Reading
	}{
		{"known, in range, unit from registry", `{"sensor_id":"t1","ts":1795369225,"value":20}`, []Reading{{"t1", "temperature", ts, 20, "C", 0}}},
		{"range bounds are inclusive", `{"sensor_id":"t1","ts":1795369225,"value":45}`, []Reading{{"t1", "temperature", ts, 45, "C", 0}}},
		{"above range", `{"sensor_id":"t1","ts":1795369225,"value":45.01}`, []Reading{{"t1", "temperature", ts, 45.01, "C", FlagOutOfRange}}},
		{"below range", `{"sensor_id":"t1","ts":1795369225,"value":-0.5}`, []Reading{{"t1", "temperature", ts, -0.5, "C", FlagOutOfRange}}},
		{"unit mismatch keeps the payload's", `{"sensor_id":"t1","ts":1795369225,"value":70,"unit":"F"}`, []Reading{{"t1", "temperature", ts, 70, "F", FlagOutOfRange | FlagUnitMismatch}}},
		{"same unit", `{"sensor_id":"t1","ts":1795369225,"value":7,"unit":"C"}`, []Reading{{"t1", "temperature", ts, 7, "C", 0}}},
		{"other metric is not checked", `{"sensor_id":"t1","ts":1795369225,"value":99,"metric":"humidity","unit":"%"}`, []Reading{{"t1", "humidity", ts, 99, "%", 0}}},
		{"multi-value checks the registry's metric only", `{"sensor_id":"t1","ts":1795369225,"temperature":50,"humidity":99}`,
			[]Reading{{"t1", "temperature", ts, 50, "C", FlagOutOfRange}, {"t1", "humidity", ts, 99, "", 0}}},
		{"registry without unit", `{"sensor_id":"nounit","ts":1795369225,"value":3,"unit":"bar"}`, []Reading{{"nounit", "pressure", ts, 3, "bar", FlagOutOfRange}}},
		{"registry without type applies to any metric", `{"sensor_id":"untyped","ts":1795369225,"value":3,"metric":"voltage"}`, []Reading{{"untyped", "voltage", ts, 3, "V", 0}}},
		{"untyped and no metric", `{"sensor_id":"untyped","ts":1795369225,"value":3}`, []Reading{{"untyped", "value", ts, 3, "V", 0}}},
		{"unknown sensor", `{"sensor_id":"nope","ts":1795369225,"value":3}`, []Reading{{"nope", "value", ts, 3, "", FlagUnknownSensor}}},
		{"unknown sensor without timestamp", `{"sensor_id":"nope","value":3}`, []Reading{{"nope", "value", recv / 1000, 3, "", FlagUnknownSensor | FlagTSFromReceipt}}},
	}
	d := newDecoder(t, DefaultConfig(), reg)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decodeOK(t, d, "x", c.payload)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestSetRegistry(t *testing.T) {
	d := newDecoder(t, DefaultConfig(), nil)
	msg := `{"sensor_id":"s","ts":1795369225,"value":100}`
	if got := decodeOK(t, d, "x", msg); got[0].Flags != FlagUnknownSensor || got[0].Metric != "value" {
		t.Fatalf("before: %+v", got[0])
	}
	d.SetRegistry(sensor.New([]sensor.Sensor{{ID: "s", Type: "level", Unit: "m", Max: 10, HasRange: true}}, nil))
	if got := decodeOK(t, d, "x", msg); got[0].Flags != FlagOutOfRange || got[0].Metric != "level" || got[0].Unit != "m" {
		t.Fatalf("after: %+v", got[0])
	}
	d.SetRegistry(nil)
	if got := decodeOK(t, d, "x", msg); got[0].Flags != FlagUnknownSensor {
		t.Fatalf("nil registry: %+v", got[0])
	}
}

func TestQuarantineReasons(t *testing.T) {
	cases := []struct {
		name    string
		topic   string
		payload string
		reason  Reason
		detail  string // a substring of the detail
	}{
		{"empty", "x", ``, ReasonEmptyPayload, "no bytes"},
		{"white space", "x", " \r\n\t ", ReasonEmptyPayload, "white space"},
		{"too large", "x", `{"sensor_id":"1","value":` + strings.Repeat("9", 64<<10) + `}`, ReasonTooLarge, "over max_payload_size 65536"},
		{"truncated", "x", `{"sensor_id":"1","value":`, ReasonInvalidJSON, "cannot parse"},
		{"garbage after", "x", `{"sensor_id":"1","value":1} x`, ReasonInvalidJSON, "tail"},
		{"not JSON", "x", `hello`, ReasonInvalidJSON, "cannot parse"},
		{"malformed number", "x", `{"sensor_id":"1","value":1.2.3}`, ReasonInvalidJSON, `"1.2.3"`},
		{"array of numbers", "x", `[1,2,3]`, ReasonNotAnObject, "element 0 is a number"},
		{"empty array", "x", `[]`, ReasonNotAnObject, "empty array"},
		{"number", "x", `42`, ReasonNotAnObject, "is a number"},
		{"text", "x", `"hi"`, ReasonNotAnObject, "is text"},
		{"null", "x", `null`, ReasonNotAnObject, "is null"},
		{"no value", "x", `{"sensor_id":"1","status":"ok"}`, ReasonMissingValue, "value, v, val"},
		{"null value", "x", `{"sensor_id":"1","value":null}`, ReasonMissingValue, "value, v, val"},
		{"empty object", "x", `{}`, ReasonMissingValue, "no value"},
		{"text value", "x", `{"sensor_id":"1","value":"abc"}`, ReasonValueNotNumber, `at "value" is the text "abc"`},
		{"empty text value", "x", `{"sensor_id":"1","value":""}`, ReasonValueNotNumber, `""`},
		{"hex text value", "x", `{"sensor_id":"1","value":"0x10"}`, ReasonValueNotNumber, `"0x10"`},
		{"object value", "x", `{"sensor_id":"1","value":{"a":1}}`, ReasonValueNotNumber, "is an object"},
		{"array value", "x", `{"sensor_id":"1","value":[1]}`, ReasonValueNotNumber, "is an array"},
		{"NaN literal", "x", `{"sensor_id":"1","value":NaN}`, ReasonValueNotFinite, `"NaN"`},
		{"nan literal", "x", `{"sensor_id":"1","value":nan}`, ReasonValueNotFinite, `"nan"`},
		{"Inf literal", "x", `{"sensor_id":"1","value":-Inf}`, ReasonValueNotFinite, `"-Inf"`},
		{"overflow", "x", `{"sensor_id":"1","value":1e999}`, ReasonValueNotFinite, `"1e999"`},
		{"NaN text", "x", `{"sensor_id":"1","value":"NaN"}`, ReasonValueNotFinite, `"NaN"`},
		{"infinity text", "x", `{"sensor_id":"1","value":"-Infinity"}`, ReasonValueNotFinite, `"-Infinity"`},
		{"overflowing text", "x", `{"sensor_id":"1","value":"1e400"}`, ReasonValueNotFinite, `"1e400"`},
		{"NaN among several values", "x", `{"sensor_id":"1","a":1,"b":NaN}`, ReasonValueNotFinite, `at "b"`},
		{"nested NaN", "x", `{"sensor_id":"1","values":{"a":NaN}}`, ReasonValueNotFinite, `at "values.a"`},
		{"no sensor id", "x", `{"value":1}`, ReasonMissingSensorID, "sensor_id, sensorId, sensor, device_id, deviceId, id"},
		{"empty topic sensor part", "sensors/", `{"value":1}`, ReasonMissingSensorID, "no sensor id"},
		{"sensor id not UTF-8", "x", "{\"sensor_id\":\"a\xff\",\"value\":1}", ReasonBadSensorID, "UTF-8"},
		{"sensor id too long", "x", `{"sensor_id":"` + strings.Repeat("s", 257) + `","value":1}`, ReasonBadSensorID, "1 to 256 bytes"},
		{"topic sensor id not UTF-8", "sensors/a\xff", `{"value":1}`, ReasonBadSensorID, "from the topic"},
		{"metric not UTF-8", "x", "{\"sensor_id\":\"a\",\"metric\":\"\xc3\",\"value\":1}", ReasonBadField, `metric at "metric"`},
		{"unit too long", "x", `{"sensor_id":"a","unit":"` + strings.Repeat("u", 300) + `","value":1}`, ReasonBadField, `unit at "unit"`},
		{"field name not UTF-8", "x", "{\"sensor_id\":\"a\",\"\xff\":1}", ReasonBadField, "field name"},
		{"bad timestamp text", "x", `{"sensor_id":"1","timestamp":"yesterday","value":1}`, ReasonBadTimestamp, `at "timestamp", "yesterday"`},
		{"bad date", "x", `{"sensor_id":"1","timestamp":"2026-02-30T00:00:00Z","value":1}`, ReasonBadTimestamp, "2026-02-30"},
		{"empty timestamp", "x", `{"sensor_id":"1","timestamp":"","value":1}`, ReasonBadTimestamp, `""`},
		{"timestamp out of int64", "x", `{"sensor_id":"1","ts":99999999999999999999,"value":1}`, ReasonBadTimestamp, "99999999999999999999"},
		{"timestamp too old", "x", `{"sensor_id":"1","timestamp":"1970-01-02T00:00:00","value":1}`, ReasonTimestampTooOld, "1970-01-02T00:00:00Z, before min_timestamp 2000-01-01T00:00:00Z"},
		{"negative timestamp", "x", `{"sensor_id":"1","ts":-5,"value":1}`, ReasonTimestampTooOld, "before min_timestamp"},
		{"timestamp in future", "x", `{"sensor_id":"1","timestamp":"2026-12-22T18:00:00Z","value":1}`, ReasonTimestampInFuture, "more than max_future 1h0m0s after its receipt at 2026-11-22T18:00:00Z"},
		{"value checked before sensor id", "x", `{"value":"abc"}`, ReasonValueNotNumber, "abc"},
		{"sensor id checked before timestamp", "x", `{"timestamp":"bad","value":1}`, ReasonMissingSensorID, "no sensor id"},
	}
	d := newDecoder(t, DefaultConfig(), nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []Reading{{SensorID: "keep"}}
			got, err := d.Decode(dst, c.topic, []byte(c.payload), recv)
			if err == nil {
				t.Fatalf("decoded %+v, want %s", got, c.reason)
			}
			if r := reasonOf(t, err); r != c.reason {
				t.Fatalf("reason %s (%v), want %s", r, err, c.reason)
			}
			var e *Error
			errors.As(err, &e)
			if !strings.Contains(e.Detail, c.detail) {
				t.Fatalf("detail %q does not contain %q", e.Detail, c.detail)
			}
			if len(e.Detail) > 400 {
				t.Fatalf("detail is %d bytes: %.80q…", len(e.Detail), e.Detail)
			}
			if len(got) != 1 || got[0].SensorID != "keep" {
				t.Fatalf("dst changed: %+v", got)
			}
		})
	}
	// Every reason but the ones only mappings reach is covered above.
	seen := map[Reason]bool{}
	for _, c := range cases {
		seen[c.reason] = true
	}
	for _, r := range Reasons() {
		if !seen[r] {
			t.Errorf("reason %s has no case", r)
		}
	}
}

func TestTimeLimits(t *testing.T) {
	minTS := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		maxFuture time.Duration
		received  int64
		ts        string // RFC 3339, or "" for none
		reason    Reason // "" = decodes
	}{
		{"exactly min_timestamp", time.Hour, recv, "2000-01-01T00:00:00Z", ""},
		{"1µs before min_timestamp", time.Hour, recv, "1999-12-31T23:59:59.999999Z", ReasonTimestampTooOld},
		{"sub-µs before min_timestamp truncates to it", time.Hour, recv, "1999-12-31T23:59:59.9999999Z", ReasonTimestampTooOld},
		{"exactly max_future after receipt", time.Hour, recv, "2026-11-22T19:00:00Z", ""},
		{"1µs beyond max_future", time.Hour, recv, "2026-11-22T19:00:00.000001Z", ReasonTimestampInFuture},
		{"receipt ns are truncated to the limit", time.Hour, recv + 999, "2026-11-22T19:00:00.000001Z", ReasonTimestampInFuture},
		{"receipt ns reach the next µs", time.Hour, recv + 1000, "2026-11-22T19:00:00.000001Z", ""},
		{"max_future 0 is no limit", 0, recv, "2099-01-01T00:00:00Z", ""},
		{"unknown receipt time: no future limit", time.Hour, 0, "2099-01-01T00:00:00Z", ""},
		{"max_future smaller than a µs", time.Nanosecond, recv, "2026-11-22T18:00:00.000001Z", ReasonTimestampInFuture},
		{"huge max_future does not overflow", time.Duration(1<<63 - 1), recv, "2262-04-11T00:00:00Z", ""},
		{"receipt time is not limited", time.Hour, 1, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MinTimestamp, cfg.MaxFuture = minTS, c.maxFuture
			d := newDecoder(t, cfg, nil)
			payload := `{"sensor_id":"s","value":1}`
			if c.ts != "" {
				payload = `{"sensor_id":"s","value":1,"timestamp":"` + c.ts + `"}`
			}
			got, err := d.Decode(nil, "x", []byte(payload), c.received)
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("decoded %+v, want %s", got, c.reason)
			}
			if r := reasonOf(t, err); r != c.reason {
				t.Fatalf("reason %s (%v), want %s", r, err, c.reason)
			}
		})
	}
}

func TestFlagsNames(t *testing.T) {
	cases := []struct {
		f    Flags
		want []string
	}{
		{0, []string{}},
		{FlagUnknownSensor, []string{"unknown_sensor"}},
		{FlagUnknownSensor | FlagOutOfRange, []string{"unknown_sensor", "out_of_range"}},
		{FlagTSFromReceipt | FlagUnitMismatch, []string{"unit_mismatch", "ts_from_receipt"}},
		{FlagUnknownSensor | FlagOutOfRange | FlagUnitMismatch | FlagTSFromReceipt, []string{"unknown_sensor", "out_of_range", "unit_mismatch", "ts_from_receipt"}},
		{1 << 20, []string{}},
	}
	for _, c := range cases {
		got := c.f.Names()
		if got == nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Flags(%d).Names() = %#v, want %#v", c.f, got, c.want)
		}
		if s := c.f.String(); s != strings.Join(c.want, "|") {
			t.Errorf("Flags(%d).String() = %q", c.f, s)
		}
	}
	a, b := (FlagOutOfRange | FlagTSFromReceipt).Names(), (FlagOutOfRange | FlagTSFromReceipt).Names()
	if &a[0] != &b[0] {
		t.Fatal("Names returns a new slice each time, want a shared one")
	}
	if n := testing.AllocsPerRun(100, func() { _ = (FlagUnknownSensor | FlagOutOfRange).Names() }); n != 0 {
		t.Fatalf("Names allocates %v times", n)
	}
	if !(FlagOutOfRange | FlagUnknownSensor).Has(FlagOutOfRange) || FlagOutOfRange.Has(FlagOutOfRange|FlagUnknownSensor) {
		t.Fatal("Has is wrong")
	}
}

func TestDecodeSteadyStateAllocs(t *testing.T) {
	cases := []struct{ name, topic, payload string }{
		{"shape1", "sensors", `{"sensor_id":"1","timestamp":"2026-11-22T17:40:25.123456","value":23,"metadata":{"lat":10,"lng":10,"unit":"C","type":"temperature","description":"Main Entrance"}}`},
		{"shape4", "plant/a/line2/pump-07/temperature", `{"ts":1795369225123,"v":71.3}`},
		{"multi", "x", `{"sensor_id":"a","ts":1795369225,"temperature":21.5,"humidity":40}`},
	}
	d := newDecoder(t, DefaultConfig(), sensor.Empty())
	var dst []Reading
	for _, c := range cases {
		var err error
		payload := []byte(c.payload)
		dst, err = d.Decode(dst[:0], c.topic, payload, recv)
		if err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(200, func() { dst, _ = d.Decode(dst[:0], c.topic, payload, recv) })
		if n != 0 {
			t.Errorf("%s: %v allocations per message in steady state, want 0", c.name, n)
		}
	}
}

func TestInternerBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.InternSize = 1000
	d := newDecoder(t, cfg, nil)
	var kept []Reading
	for i := 0; i < 2500; i++ {
		var b bytes.Buffer
		b.WriteString(`{"sensor_id":"s-`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(time.Duration(i).String())
		b.WriteString(`","value":1}`)
		got, err := d.Decode(nil, "x", b.Bytes(), recv)
		if err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			kept = append(kept, got...)
		}
		if n := len(d.sensors.m); n > cfg.InternSize {
			t.Fatalf("intern table holds %d strings, over %d", n, cfg.InternSize)
		}
	}
	for j, r := range kept {
		i := j * 500
		want := "s-" + strings.Repeat("x", i%7) + time.Duration(i).String()
		if r.SensorID != want {
			t.Fatalf("kept reading %d has sensor %q, want %q", j, r.SensorID, want)
		}
	}
}

// A sensor the registry lists is resolved to the registry's own id string, and the decoder keeps no
// copy of it; only unlisted ids are interned by the decoder (one shared string each).
func TestRegisteredSensorsNotCopied(t *testing.T) {
	var list []sensor.Sensor
	for i := range 100 {
		list = append(list, sensor.Sensor{ID: fmt.Sprintf("s-%d", i), Type: "temperature", Unit: "C"})
	}
	reg := sensor.New(list, nil)
	d := newDecoder(t, DefaultConfig(), reg)
	msgs := []func(i int) (topic, payload string){
		func(i int) (string, string) { return "x", fmt.Sprintf(`{"sensor_id":"s-%d","value":1}`, i) },       // id in the payload
		func(i int) (string, string) { return fmt.Sprintf("plant/a/line2/s-%d/temperature", i), `{"v":1}` }, // id in the topic
	}
	for round := range 2 {
		for _, msg := range msgs {
			for i := range 100 {
				topic, payload := msg(i)
				rs, err := d.Decode(nil, topic, []byte(payload), recv)
				if err != nil || len(rs) != 1 {
					t.Fatalf("%s %s: %v, %d readings", topic, payload, err, len(rs))
				}
				want := reg.Lookup(fmt.Sprintf("s-%d", i))
				if rs[0].SensorID != want.ID || unsafe.StringData(rs[0].SensorID) != unsafe.StringData(want.ID) {
					t.Fatalf("round %d: %s %s: sensor %q is not the registry's string", round, topic, payload, rs[0].SensorID)
				}
				if rs[0].Flags.Has(FlagUnknownSensor) {
					t.Fatalf("round %d: sensor %q flagged unknown", round, rs[0].SensorID)
				}
			}
		}
	}
	if n := len(d.sensors.m); n != 0 {
		t.Fatalf("decoder holds %d ids of registered sensors, want 0", n)
	}
	var first string
	for range 3 {
		rs, err := d.Decode(nil, "x", []byte(`{"sensor_id":"stranger","value":1}`), recv)
		if err != nil || len(rs) != 1 {
			t.Fatalf("stranger: %v, %d readings", err, len(rs))
		}
		if !rs[0].Flags.Has(FlagUnknownSensor) {
			t.Fatal("unlisted sensor not flagged unknown")
		}
		if first == "" {
			first = rs[0].SensorID
		} else if unsafe.StringData(rs[0].SensorID) != unsafe.StringData(first) {
			t.Fatal("unlisted sensor's id not interned: a new string per message")
		}
	}
	if n := len(d.sensors.m); n != 1 {
		t.Fatalf("decoder holds %d ids, want 1 (the unlisted one)", n)
	}
}
