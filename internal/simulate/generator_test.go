package simulate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/testkit"
)

// fixtureLines returns the (topic, payload) pairs of payload-variants.ndjson.
func fixtureLines(t *testing.T) []struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
} {
	t.Helper()
	f, err := os.Open(filepath.Join(testkit.RepoRoot(t), "testdata", "fixtures", "payload-variants.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []struct {
		Topic   string          `json:"topic"`
		Payload json.RawMessage `json:"payload"`
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Topic   string          `json:"topic"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	if len(out) != 4 {
		t.Fatalf("fixture has %d lines, want 4", len(out))
	}
	return out
}

// structure describes a JSON value's keys and types: {"a":"number","b":{"c":"string"}}.
func structure(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, x := range v {
			m[k] = structure(x)
		}
		return m
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload %q: %v", b, err)
	}
	return m
}

// fixtureRegistry holds the fixture's sensors where the shapes name them: "1" (nested), "Sensor 3"
// (flat-unix), and "pump-07" as the 11th sensor, so that topic-ms puts it on plant/a/line2.
func fixtureRegistry() *sensor.Registry {
	ss := []sensor.Sensor{
		{ID: "1", Type: "temperature", Unit: "C", Min: 0, Max: 45, HasRange: true, Lat: 10, Lng: 10, HasLocation: true, Description: "Main Entrance"},
		{ID: "Sensor 3", Type: "temperature", Unit: "C", Min: 0, Max: 45, HasRange: true, Lat: 90, Lng: 10, HasLocation: true, Description: "Deposit"},
	}
	for i := range 8 {
		ss = append(ss, sensor.Sensor{ID: fmt.Sprintf("a%02d", i), Type: "humidity"})
	}
	ss = append(ss, sensor.Sensor{ID: "pump-07", Type: "temperature"})
	return sensor.New(ss, nil)
}

func TestShapesMatchFixture(t *testing.T) {
	fx := fixtureLines(t)
	reg := fixtureRegistry()
	now := time.Date(2026, 11, 22, 17, 40, 25, 123456789, time.UTC)
	cases := []struct {
		shape    string
		line     int
		sensor   string
		topic    string // exact topic expected for sensor
		ts       func(m map[string]any) (time.Time, error)
		tsAt     time.Time // what the payload's timestamp reads
		valueKey string
	}{
		{ShapeNested, 0, "1", "sensors", func(m map[string]any) (time.Time, error) {
			return time.Parse(isoMicro, m["timestamp"].(string))
		}, now.Truncate(time.Microsecond), "value"},
		{ShapeFlatUnix, 1, "Sensor 3", "sensors/Sensor_3", func(m map[string]any) (time.Time, error) {
			return time.Unix(int64(m["timestamp"].(float64)), 0).UTC(), nil
		}, now.Truncate(time.Second), "value"},
		{ShapeMetricType, 2, "pump-07", "sensor-data", func(m map[string]any) (time.Time, error) {
			return time.Parse(time.RFC3339Nano, m["timestamp"].(string))
		}, now.Truncate(time.Microsecond), "value"},
		{ShapeTopicMS, 3, "pump-07", "plant/a/line2/pump-07/temperature", func(m map[string]any) (time.Time, error) {
			return time.UnixMilli(int64(m["ts"].(float64))).UTC(), nil
		}, now.Truncate(time.Millisecond), "v"},
	}
	for _, c := range cases {
		t.Run(c.shape, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Shape = c.shape
			g, err := NewGenerator(cfg, reg)
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal(fx[c.line].Payload, &want); err != nil {
				t.Fatal(err)
			}
			found := false
			for range g.Len() {
				m := g.Next(nil, now)
				if m.Truth.SensorID != c.sensor {
					continue
				}
				found = true
				got := decode(t, m.Payload)
				if !reflect.DeepEqual(structure(got), structure(want)) {
					t.Fatalf("structure differs from fixture line %d:\n got  %s\n want %s", c.line+1, m.Payload, fx[c.line].Payload)
				}
				if m.Topic != c.topic || strings.Count(m.Topic, "/") != strings.Count(fx[c.line].Topic, "/") {
					t.Fatalf("topic %q, want %q (fixture %q)", m.Topic, c.topic, fx[c.line].Topic)
				}
				ts, err := c.ts(got)
				if err != nil || !ts.Equal(c.tsAt) || !m.Truth.TS.Equal(c.tsAt) {
					t.Fatalf("timestamp %v (%v), truth %v, want %v", ts, err, m.Truth.TS, c.tsAt)
				}
				if v := got[c.valueKey].(float64); v != m.Truth.Value || !m.Truth.HasValue {
					t.Fatalf("value %v, truth %v", v, m.Truth.Value)
				}
				if m.Truth.Fault != FaultNone || m.Truth.Topic != m.Topic || m.Truth.Metric != "temperature" {
					t.Fatalf("truth %+v", m.Truth)
				}
			}
			if !found {
				t.Fatalf("sensor %q not generated", c.sensor)
			}
		})
	}
}

func TestNestedMetadataValues(t *testing.T) {
	cfg := DefaultConfig()
	g, err := NewGenerator(cfg, fixtureRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m := g.Next(nil, time.Unix(1795369225, 0))
	got := decode(t, m.Payload)
	want := map[string]any{"lat": 10.0, "lng": 10.0, "unit": "C", "type": "temperature", "description": "Main Entrance"}
	if !reflect.DeepEqual(got["metadata"], want) || got["sensor_id"] != "1" {
		t.Fatalf("payload %s", m.Payload)
	}
}

func TestDeterministic(t *testing.T) {
	gen := func(seed int64, faults FaultsConfig) [][]byte {
		cfg := DefaultConfig()
		cfg.Seed, cfg.Faults, cfg.Fleet = seed, faults, 20
		g, err := NewGenerator(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 5000 {
			out = append(out, g.Next(nil, now.Add(time.Duration(i)*50*time.Millisecond)).Payload)
		}
		return out
	}
	faults := FaultsConfig{Spike: 0.01, Stuck: 0.01, Gap: 0.01, Duplicate: 0.01, Late: 0.01, OutOfOrder: 0.01, Malformed: 0.01}
	a, b, c := gen(7, faults), gen(7, faults), gen(8, faults)
	if !slices.EqualFunc(a, b, bytes.Equal) {
		t.Fatal("same seed, different messages")
	}
	same := 0
	for i := range a {
		if bytes.Equal(a[i], c[i]) {
			same++
		}
	}
	if same > len(a)/100 {
		t.Fatalf("seeds 7 and 8 agree on %d of %d messages", same, len(a))
	}
}

// Faults must not change the values of the messages they leave intact: the value stream is separate.
func TestFaultsKeepCleanValues(t *testing.T) {
	values := func(faults FaultsConfig) map[string]float64 {
		cfg := DefaultConfig()
		cfg.Faults = faults
		g, err := NewGenerator(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 20000 {
			m, ok := g.Slot(nil, now.Add(time.Duration(i)*200*time.Millisecond))
			if ok && m.Truth.Fault == FaultNone && !g.Pending() {
				out[fmt.Sprintf("%s/%d", m.Truth.SensorID, i)] = m.Truth.Value
			}
			if g.Pending() {
				g.Next(nil, now)
			}
		}
		return out
	}
	clean := values(FaultsConfig{})
	faulty := values(FaultsConfig{Spike: 0.02, Stuck: 0.005, Gap: 0.01, Duplicate: 0.02, Late: 0.02, OutOfOrder: 0.02, Malformed: 0.02})
	if len(faulty) < len(clean)/2 {
		t.Fatalf("only %d clean messages of %d", len(faulty), len(clean))
	}
	for k, v := range faulty {
		if clean[k] != v {
			t.Fatalf("%s: %v with faults, %v without", k, v, clean[k])
		}
	}
}

func TestValuesInRange(t *testing.T) {
	reg := sensor.New([]sensor.Sensor{
		{ID: "t", Type: "temperature"},
		{ID: "p", Type: "pressure"},
		{ID: "h", Type: "Humidity"},
		{ID: "v", Type: "vibration", Min: 1, Max: 2, HasRange: true},
		{ID: "n", Type: "temperature", Min: -40.5, Max: -10, HasRange: true},
		{ID: "x"},
		{ID: "flat", Type: "level", Min: 5, Max: 5, HasRange: true},
	}, nil)
	want := map[string][2]float64{"t": {0, 45}, "p": {950, 1050}, "h": {0, 100}, "v": {1, 2}, "n": {-40.5, -10}, "x": {0, 100}, "flat": {5, 5}}
	for _, shape := range Shapes {
		t.Run(shape, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Shape = shape
			g, err := NewGenerator(cfg, reg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			for i := range 100_000 {
				m := g.Next(nil, start.Add(time.Duration(i)*7*time.Second))
				r := want[m.Truth.SensorID]
				v := m.Truth.Value
				if v < r[0] || v > r[1] {
					t.Fatalf("%s: value %v outside %v", m.Truth.SensorID, v, r)
				}
				if math.Abs(v*100-math.Round(v*100)) > 1e-6 {
					t.Fatalf("%s: value %v has more than two decimals", m.Truth.SensorID, v)
				}
				if m.Truth.Fault != FaultNone || !json.Valid(m.Payload) {
					t.Fatalf("unexpected fault or invalid payload: %+v %s", m.Truth, m.Payload)
				}
			}
		})
	}
}

func TestDailyCycle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Fleet = 50
	g, err := NewGenerator(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sum [24]float64
	var n [24]int
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 24 * 3600 / 2 { // a message every 2s for a day
		now := day.Add(time.Duration(i) * 2 * time.Second)
		m := g.Next(nil, now)
		sum[now.Hour()] += m.Truth.Value
		n[now.Hour()]++
	}
	mean := func(h int) float64 { return sum[h] / float64(n[h]) }
	// Built-in sensors are temperature 0–45: the cycle's amplitude is 15% of 45, so 15:00 and 03:00
	// differ by about 13.5 (less the spread of phases); the walk averages out over 50 sensors.
	if d := mean(15) - mean(3); d < 9 || d > 15 {
		t.Fatalf("mean at 15:00 %.2f, at 03:00 %.2f: difference %.2f, want 9–15", mean(15), mean(3), d)
	}
	if math.Abs(mean(9)-mean(21)) > 3 {
		t.Fatalf("09:00 and 21:00 are the cycle's midpoints, yet %.2f vs %.2f", mean(9), mean(21))
	}
}

func TestMonotonicTimestamps(t *testing.T) {
	for _, shape := range []string{ShapeNested, ShapeMetricType, ShapeTopicMS} {
		t.Run(shape, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Shape = shape
			g, err := NewGenerator(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			last := map[string]time.Time{}
			for range 1000 { // every message at the same instant: each sensor's timestamps still increase
				m := g.Next(nil, now)
				if prev, ok := last[m.Truth.SensorID]; ok && !m.Truth.TS.After(prev) {
					t.Fatalf("%s: %v after %v", m.Truth.SensorID, m.Truth.TS, prev)
				}
				last[m.Truth.SensorID] = m.Truth.TS
			}
			if d := last["Sensor 1"].Sub(now); d != 199*g.Resolution() {
				t.Fatalf("200 messages at one instant end %v later, want 199 units", d)
			}
		})
	}
}
