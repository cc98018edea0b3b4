package simulate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/sensor"
)

// FuzzGenerator feeds the generator what comes from outside: sensor ids, types, units and ranges
// (from a sensors.json), a topic template (from the configuration), seeds and fault rates. Whatever
// they hold, it must not panic, every payload not labelled malformed must be valid JSON naming the
// sensor, every truth line must be valid JSON, and no topic may hold a wildcard.
func FuzzGenerator(f *testing.F) {
	f.Add(int64(0), uint8(0), "", "Sensor 1", "temperature", "C", 0.0, 45.0, uint8(0), int64(0))
	f.Add(int64(1), uint8(1), "sensors/{sensor}", "a\"b\\c\x00/+#", "", "", -1e300, 1e300, uint8(255), int64(1795369225123456789))
	f.Add(int64(2), uint8(3), "plant/{site}/{line}/{sensor}/{metric}", "\xff\xfe", "vib\nration", "µ", 5.0, 5.0, uint8(7), int64(-1))
	f.Add(int64(3), uint8(2), "{sensor}{metric}{site}{line}{", strings.Repeat("x", 5000), "humidity", "%", math.Inf(-1), math.NaN(), uint8(128), int64(math.MaxInt64))
	f.Add(int64(4), uint8(0), "a/{room}", "", "", "", 0.0, 0.0, uint8(1), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, seed int64, shapeIdx uint8, topic, id, typ, unit string, lo, hi float64, faultBits uint8, nowNanos int64) {
		s := sensor.Sensor{ID: id, Type: typ, Unit: unit, Lat: 1, Lng: 2, HasLocation: true, Description: id}
		if !math.IsNaN(lo) && !math.IsNaN(hi) && !math.IsInf(lo, 0) && !math.IsInf(hi, 0) && lo <= hi {
			s.Min, s.Max, s.HasRange = lo, hi, true
		}
		reg := sensor.New([]sensor.Sensor{s, {ID: id + "-2", Type: "pressure"}}, nil)
		cfg := DefaultConfig()
		cfg.Seed, cfg.Shape, cfg.Topic = seed, Shapes[int(shapeIdx)%len(Shapes)], topic
		probs := []*float64{&cfg.Faults.Spike, &cfg.Faults.Stuck, &cfg.Faults.Gap, &cfg.Faults.Duplicate, &cfg.Faults.Late, &cfg.Faults.OutOfOrder, &cfg.Faults.Malformed}
		for i, p := range probs {
			if faultBits&(1<<i) != 0 {
				*p = 0.1
			}
		}
		g, err := NewGenerator(cfg, reg)
		if err != nil {
			if cfg.Topic == "" || checkTopic(cfg.Topic) == nil {
				t.Fatalf("NewGenerator rejected a valid configuration: %v", err)
			}
			return
		}
		now := time.Unix(0, nowNanos%(1<<62))
		var buf, line []byte
		for i := range 200 {
			m := g.Next(buf[:0], now.Add(time.Duration(i)*time.Second))
			if strings.ContainsAny(m.Topic, "+#") || m.Topic == "" {
				t.Fatalf("topic %q", m.Topic)
			}
			line = m.Truth.AppendJSON(line[:0])
			if !json.Valid(line) {
				t.Fatalf("truth line is not JSON: %q", line)
			}
			if m.Truth.Fault != FaultMalformed {
				var p map[string]any
				if err := json.Unmarshal(m.Payload, &p); err != nil {
					t.Fatalf("payload %q: %v", m.Payload, err)
				}
				if sid, ok := p["sensor_id"]; ok && sid != viaJSON(m.Truth.SensorID) {
					t.Fatalf("payload names %q, truth %q", sid, m.Truth.SensorID)
				}
			}
			buf = m.Payload
		}
	})
}

// viaJSON returns s as encoding/json round-trips it (each invalid UTF-8 byte becomes U+FFFD).
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
