package decode

import (
	"testing"

	"github.com/valyala/fastjson"

	"github.com/sluice-project/sluice/internal/sensor"
)

// benchShapes are the fixture shapes and the other common ones, as the decoder stage sees them.
var benchShapes = []struct{ name, topic, payload string }{
	{"shape1_metadata", "sensors", `{"sensor_id":"1","timestamp":"2026-11-22T17:40:25.123456","value":23,"metadata":{"lat":10,"lng":10,"unit":"C","type":"temperature","description":"Main Entrance"}}`},
	{"shape2_unix_s", "sensors/Sensor_3", `{"sensor_id":"Sensor 3","type":"temperature","value":31.42,"unit":"C","location":{"lat":90,"lng":10},"timestamp":1795369225}`},
	{"shape3_metric_type", "sensor-data", `{"sensor_id":"pump-07","timestamp":"2026-11-22T17:40:25.5Z","metric_type":"vibration","value":4.2}`},
	{"shape4_topic_pattern", "plant/a/line2/pump-07/temperature", `{"ts":1795369225123,"v":71.3}`},
	{"multi_value", "sensors/env-1", `{"ts":"2026-11-22T17:40:25Z","temperature":21.5,"humidity":40,"co2":412,"pressure":1013.2}`},
	{"mapping_values", "factory/m-1/telemetry", `{"meta":{"time":1795369225000},"data":{"temp":21.5,"rpm":1200}}`},
}

func BenchmarkDecode(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Mappings = []Mapping{{Topic: "factory/+sensor_id/telemetry", Timestamp: "meta.time", TimestampFormat: "unix_ms", Values: []string{"data.*"}}}
	reg, _ := sensor.Builtin()
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			d := newDecoder(b, cfg, reg)
			payload := []byte(s.payload)
			dst, err := d.Decode(nil, s.topic, payload, recv)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			readings := 0
			for b.Loop() {
				dst, _ = d.Decode(dst[:0], s.topic, payload, recv)
				readings += len(dst)
			}
			b.ReportMetric(float64(readings)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkDecodeDistinctSensors decodes shape 1 for 10,000 sensors in turn: the intern table's hit path
// with a realistic working set.
func BenchmarkDecodeDistinctSensors(b *testing.B) {
	const n = 10_000
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = []byte(`{"sensor_id":"sensor-` + itoa(i) + `","timestamp":"2026-11-22T17:40:25.123456","value":23,"metadata":{"unit":"C","type":"temperature"}}`)
	}
	d := newDecoder(b, DefaultConfig(), sensor.Empty())
	var dst []Reading
	for _, p := range payloads {
		dst, _ = d.Decode(dst[:0], "sensors", p, recv)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(payloads[0])))
	i := 0
	for b.Loop() {
		dst, _ = d.Decode(dst[:0], "sensors", payloads[i%n], recv)
		i++
	}
}

// BenchmarkDecodeQuarantine measures the error path (one *Error and its detail per message).
func BenchmarkDecodeQuarantine(b *testing.B) {
	d := newDecoder(b, DefaultConfig(), nil)
	payload := []byte(`{"sensor_id":"1","timestamp":"2026-11-22T17:40:25","value":"abc"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := d.Decode(nil, "sensors", payload, recv); err == nil {
			b.Fatal("decoded")
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	n := len(buf)
	for ; i > 0; i /= 10 {
		n--
		buf[n] = byte('0' + i%10)
	}
	return string(buf[n:])
}

// BenchmarkParseOnly is the floor: fastjson parsing each shape, with nothing read from it.
func BenchmarkParseOnly(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			var p fastjson.Parser
			payload := []byte(s.payload)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := p.ParseBytes(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
