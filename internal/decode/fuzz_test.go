package decode

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/sensor"
)

// FuzzDecode feeds arbitrary payloads and topics to a decoder with the default rules and a few
// mappings: it must never panic; every reading must have a sensor id and a metric (valid UTF-8 of at
// most 256 bytes), a finite value and a timestamp within the limits (or the receipt time, flagged);
// every error must be an *Error with a known Reason and a detail; and a failing message must leave
// dst as it was.
func FuzzDecode(f *testing.F) {
	valid := []string{
		`{"sensor_id":"1","timestamp":"2026-11-22T17:40:25.123456","value":23,"metadata":{"lat":10,"lng":10,"unit":"C","type":"temperature","description":"Main Entrance"}}`,
		`{"sensor_id":"Sensor 3","type":"temperature","value":31.42,"unit":"C","location":{"lat":90,"lng":10},"timestamp":1795369225}`,
		`{"sensor_id":"pump-07","timestamp":"2026-11-22T17:40:25.5Z","metric_type":"vibration","value":4.2}`,
		`{"ts":1795369225123,"v":71.3}`,
		`{"sensor_id":"a","ts":1795369225,"temperature":21.5,"humidity":40,"values":{"co2":400}}`,
		`[{"sensor_id":"a","ts":"2026-11-22 17:40:25+02","value":"1.5"},{"sensor_id":"b","value":true}]`,
		`{"meta":{"time":1795369225000},"data":{"temp":21.5,"rpm":1200}}`,
	}
	topics := []string{"sensors", "sensors/Sensor_3", "sensor-data", "plant/a/line2/pump-07/temperature", "factory/m-1/telemetry", "devices/d/x", "$SYS/x", ""}
	for i, v := range valid {
		t := topics[i%len(topics)]
		f.Add([]byte(v), t)
		f.Add([]byte(v[:len(v)/2]), t)                             // truncated
		f.Add([]byte(v+` {"x":1}`), t)                             // valid plus garbage
		f.Add([]byte(strings.Replace(v, "23", "NaN", 1)), t)       // non-finite
		f.Add([]byte(strings.Replace(v, `"1"`, "\"\xff\"", 1)), t) // not UTF-8
	}
	f.Add([]byte{}, "sensors")
	f.Add([]byte(" "), "sensors")
	f.Add([]byte(`[1,2,3]`), "sensors")
	f.Add([]byte(`{"sensor_id":"1","value":`+strings.Repeat("9", 64<<10-26)+`}`), "sensors") // max length
	f.Add([]byte(`{"sensor_id":"1","value":`+strings.Repeat("9", 64<<10)+`}`), "sensors")    // over it
	f.Add([]byte(strings.Repeat("[", 400)), "sensors")                                       // deep nesting

	cfg := DefaultConfig()
	cfg.Mappings = []Mapping{
		{Topic: "factory/+sensor_id/telemetry", Timestamp: "meta.time", TimestampFormat: "unix_ms", Values: []string{"data.*"}, FixedUnit: "C"},
		{Topic: "devices/+sensor_id/#", Values: []string{"*"}, TimestampFormat: "02/01/2006 15:04:05"},
	}
	reg := sensor.New([]sensor.Sensor{{ID: "1", Type: "temperature", Unit: "C", Min: 0, Max: 45, HasRange: true}}, nil)
	d, err := New(cfg, reg)
	if err != nil {
		f.Fatal(err)
	}
	minTS := cfg.MinTimestamp.UnixMicro()
	maxTS := (recv + int64(cfg.MaxFuture)) / 1000
	f.Fuzz(func(t *testing.T, payload []byte, topic string) {
		sentinel := Reading{SensorID: "sentinel"}
		got, err := d.Decode([]Reading{sentinel}, topic, payload, recv)
		if len(got) == 0 || got[0] != sentinel {
			t.Fatalf("dst's first element changed: %+v", got)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if !slices.Contains(Reasons(), e.Reason) || e.Detail == "" {
				t.Fatalf("error %+v has an unknown reason or no detail", e)
			}
			if len(got) != 1 {
				t.Fatalf("failed message appended %d readings", len(got)-1)
			}
			return
		}
		if len(got) < 2 {
			t.Fatal("success without a reading")
		}
		for _, r := range got[1:] {
			if !validText(r.SensorID) || !validText(r.Metric) || r.Unit != "" && !validText(r.Unit) {
				t.Fatalf("reading with bad text: %+v", r)
			}
			if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				t.Fatalf("non-finite value: %+v", r)
			}
			if r.Flags.Has(FlagTSFromReceipt) {
				if r.TS != recv/1000 {
					t.Fatalf("receipt-time reading at %d, want %d", r.TS, recv/1000)
				}
			} else if r.TS < minTS || r.TS > maxTS {
				t.Fatalf("timestamp %s outside [%s, %s]: %+v", fmtUS(r.TS), fmtUS(minTS), fmtUS(maxTS), r)
			}
			if r.Flags&^flagMask != 0 {
				t.Fatalf("unknown flags: %+v", r)
			}
		}
	})
}

func validText(s string) bool {
	return s != "" && len(s) <= maxText && strings.ToValidUTF8(s, "\uFFFD") == s
}

// FuzzParseTS checks that the timestamp readers never panic and that whatever parseISO accepts,
// time.Parse reads as the same instant when it is in RFC 3339 form.
func FuzzParseTS(f *testing.F) {
	for _, s := range []string{"2026-11-22T17:40:25.123456Z", "2026-11-22 17:40:25+02", "2026-11-22", "1795369225.5", "1e9", "-5", "", "2026-02-29T00:00:00Z", "9999-12-31T23:59:60-23:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []tsKind{tsAuto, tsRFC3339, tsISO8601, tsUnixS, tsUnixMS, tsUnixUS, tsUnixNS} {
			parseTSText(s, tsFormat{kind: k})
			parseTSNumber(s, tsFormat{kind: k})
		}
		us, ok := parseISO(s, true)
		if !ok || strings.Contains(s, " ") || strings.Contains(s, ":60") || strings.ContainsAny(s, ",tzUG") {
			return // forms time.Parse's RFC 3339 does not take
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return // e.g. +0200 or +02: ours is more lenient
		}
		if want.UnixMicro() != us {
			t.Fatalf("parseISO(%q) = %d, time.Parse says %d", s, us, want.UnixMicro())
		}
	})
}
