package decode

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

func TestDefaultConfigValid(t *testing.T) {
	if es := DefaultConfig().Validate(); len(es) != 0 {
		t.Fatalf("DefaultConfig is invalid: %v", es)
	}
	var b strings.Builder
	if err := config.Document(&b, struct {
		Decode Config `yaml:"decode"`
	}{DefaultConfig()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max_payload_size: 64KiB", "min_timestamp: 2000-01-01T00:00:00Z", "max_future: 1h0m0s", "timestamp_format: auto", "mappings: []", "# env: SLUICE_DECODE_MAX_FUTURE"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("sluice config output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(c *Config)
		keys []string // keys of the errors, in order
	}{
		{"zero payload size", func(c *Config) { c.MaxPayloadSize = 0 }, []string{"max_payload_size"}},
		{"negative max_future", func(c *Config) { c.MaxFuture = -time.Second }, []string{"max_future"}},
		{"tiny intern table", func(c *Config) { c.InternSize = 10 }, []string{"intern_size"}},
		{"zero min_timestamp", func(c *Config) { c.MinTimestamp = time.Time{} }, nil},
		{"bad format", func(c *Config) { c.TimestampFormat = "epoch" }, []string{"timestamp_format"}},
		{"bad topic pattern", func(c *Config) { c.TopicPatterns = []string{"a/+b", "a/#/b", "a/b+"} }, []string{"topic_patterns[1]", "topic_patterns[2]"}},
		{"good mapping", func(c *Config) {
			c.Mappings = []Mapping{{Topic: "f/+sensor_id/#", Timestamp: "meta.t", TimestampFormat: "unix_ms", Values: []string{"data.*", "x.y"}, FixedUnit: "C"}}
		}, nil},
		{"mapping without topic", func(c *Config) { c.Mappings = []Mapping{{Topic: "a"}, {Value: "v"}} }, []string{"mappings[1].topic"}},
		{"mapping with bad topic", func(c *Config) { c.Mappings = []Mapping{{Topic: "a/#/b"}} }, []string{"mappings[0].topic"}},
		{"topic names sensor_id twice", func(c *Config) { c.Mappings = []Mapping{{Topic: "+sensor_id/+sensor_id"}} }, []string{"mappings[0].topic"}},
		{"bad wildcard name", func(c *Config) { c.Mappings = []Mapping{{Topic: "a/+se-nsor"}} }, []string{"mappings[0].topic"}},
		{"bad paths", func(c *Config) {
			c.Mappings = []Mapping{{Topic: "a", SensorID: "a..b", Timestamp: ".t", Value: "v.", Metric: "m.*", Unit: "*"}}
		}, []string{"mappings[0].sensor_id", "mappings[0].timestamp", "mappings[0].value", "mappings[0].metric", "mappings[0].unit"}},
		{"bad mapping format", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", TimestampFormat: "yyyy"}} }, []string{"mappings[0].timestamp_format"}},
		{"bad values", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", Values: []string{"", "-", "a.*.b", "*"}}} }, []string{"mappings[0].values[0]", "mappings[0].values[1]", "mappings[0].values[2]"}},
		{"value and values", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", Value: "v", Values: []string{"w"}}} }, []string{"mappings[0].value"}},
		{"metric with values", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", FixedMetric: "m", Values: []string{"w"}}} }, []string{"mappings[0].metric"}},
		{"value none", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", Value: "-"}} }, []string{"mappings[0].value"}},
		{"metric and fixed_metric", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", Metric: "m", FixedMetric: "n"}} }, []string{"mappings[0].fixed_metric"}},
		{"unit and fixed_unit", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", Unit: "u", FixedUnit: "C"}} }, []string{"mappings[0].fixed_unit"}},
		{"long fixed unit", func(c *Config) { c.Mappings = []Mapping{{Topic: "a", FixedUnit: strings.Repeat("u", 300)}} }, []string{"mappings[0].fixed_unit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mod(&cfg)
			es := cfg.Validate()
			var keys []string
			for _, e := range es {
				keys = append(keys, e.Key)
				if e.Problem == "" || e.Fix == "" {
					t.Errorf("error %v lacks a problem or a fix", e)
				}
			}
			if !reflect.DeepEqual(keys, c.keys) {
				t.Fatalf("error keys %v, want %v (%v)", keys, c.keys, es)
			}
			if _, err := New(cfg, nil); (err == nil) != (len(c.keys) == 0) {
				t.Fatalf("New error %v, want one iff Validate fails", err)
			}
		})
	}
}

// TestConfigLoad reads a decode section through the configuration loader: mappings decode, their
// errors carry the full key, and an unknown key inside a mapping is refused with its line.
func TestConfigLoad(t *testing.T) {
	type root struct {
		Decode Config `yaml:"decode"`
	}
	load := func(t *testing.T, yaml string, env ...string) (root, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "sluice.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		r := root{Decode: DefaultConfig()}
		err := config.Load(path, &r, env)
		return r, err
	}
	r, err := load(t, `
decode:
  max_payload_size: 1MiB
  min_timestamp: 2010-01-01T00:00:00Z
  mappings:
    - topic: factory/+sensor_id/telemetry
      timestamp: meta.time
      timestamp_format: unix_ms
      values: [data.*]
      fixed_unit: C
`, "SLUICE_DECODE_MAX_FUTURE=5m")
	if err != nil {
		t.Fatal(err)
	}
	want := Mapping{Topic: "factory/+sensor_id/telemetry", Timestamp: "meta.time", TimestampFormat: "unix_ms", Values: []string{"data.*"}, FixedUnit: "C"}
	if len(r.Decode.Mappings) != 1 || !reflect.DeepEqual(r.Decode.Mappings[0], want) {
		t.Fatalf("mappings %+v, want [%+v]", r.Decode.Mappings, want)
	}
	if r.Decode.MaxPayloadSize != 1<<20 || r.Decode.MaxFuture != 5*time.Minute || !r.Decode.MinTimestamp.Equal(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("config %+v", r.Decode)
	}

	_, err = load(t, "decode:\n  mappings:\n    - topic: a\n    - topic: a/#/b\n")
	if err == nil || !strings.Contains(err.Error(), "decode.mappings[1].topic: ") {
		t.Fatalf("err = %v, want one naming decode.mappings[1].topic", err)
	}
	_, err = load(t, "decode:\n  mappings:\n    - topic: a\n      valeu: x\n")
	if err == nil || !strings.Contains(err.Error(), `line 4: decode.mappings: unknown key "valeu"`) {
		t.Fatalf("err = %v, want the unknown key and its line", err)
	}
	_, err = load(t, "decode:\n  mappings:\n    - just-text\n")
	if err == nil || !strings.Contains(err.Error(), "each mapping is an object") {
		t.Fatalf("err = %v", err)
	}
}
