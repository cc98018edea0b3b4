package simulate

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *Config)
		want   []string // one substring per expected error, in order
	}{
		{"defaults", func(*Config) {}, nil},
		{"every shape", func(c *Config) { c.Shape = ShapeMetricType }, nil},
		{"schemes", func(c *Config) { c.Broker = "ws://127.0.0.1:8083/mqtt" }, nil},
		{"bad broker", func(c *Config) { c.Broker = "http://x:1" }, []string{`broker: "http://x:1" is not a broker URL`}},
		{"broker without host", func(c *Config) { c.Broker = "127.0.0.1:1883" }, []string{"broker: "}},
		{"missing sensors file", func(c *Config) { c.Sensors = "/nonexistent/s.json" }, []string{"sensors: cannot read /nonexistent/s.json"}},
		{"negative fleet", func(c *Config) { c.Fleet = -1 }, []string{"fleet: -1 is negative"}},
		{"zero interval", func(c *Config) { c.Interval = 0 }, []string{"interval: 0s is not positive"}},
		{"NaN rate", func(c *Config) { c.Rate = math.NaN() }, []string{"rate: NaN is not a rate"}},
		{"negative rate", func(c *Config) { c.Rate = -5 }, []string{"rate: -5 is not a rate"}},
		{"shape", func(c *Config) { c.Shape = "xml" }, []string{`shape: "xml" is not a shape; fix: use one of nested, flat-unix, metric-type, topic-ms`}},
		{"wildcard topic", func(c *Config) { c.Topic = "a/+/b" }, []string{"topic: \"a/+/b\" holds a wildcard"}},
		{"unknown placeholder", func(c *Config) { c.Topic = "a/{room}" }, []string{"unknown placeholder {room}"}},
		{"unclosed placeholder", func(c *Config) { c.Topic = "a/{sensor" }, []string{"unclosed {"}},
		{"topic-ms needs sensor in topic", func(c *Config) { c.Shape, c.Topic = ShapeTopicMS, "plant/{metric}" }, []string{"topic: the topic-ms payload carries neither"}},
		{"qos 2", func(c *Config) { c.QoS = 2 }, []string{"qos: 2 is not supported; fix: use 0 or 1"}},
		{"no connections", func(c *Config) { c.Connections = 0 }, []string{"connections: 0 is out of range"}},
		{"inflight", func(c *Config) { c.Inflight = 0 }, []string{"inflight: 0 is out of range"}},
		{"negative count", func(c *Config) { c.Count = -1 }, []string{"count: -1 is negative"}},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, []string{"duration: -1s is negative"}},
		{"truth dir missing", func(c *Config) { c.Truth = "/nonexistent/dir/truth.ndjson" }, []string{"truth: directory of /nonexistent/dir/truth.ndjson does not exist"}},
		{"client id", func(c *Config) { c.ClientID = "a/b" }, []string{`client_id: "a/b" is not a client id prefix`}},
		{"password alone", func(c *Config) { c.Password = "x" }, []string{"username: password is set without username"}},
		{"fault probability", func(c *Config) { c.Faults.Spike = 1.5 }, []string{"faults.spike: 1.5 is not a probability"}},
		{"fault sum", func(c *Config) { c.Faults.Late, c.Faults.Malformed = 0.6, 0.6 }, []string{"faults: the probabilities add up to 1.2, more than 1"}},
		{"two problems", func(c *Config) { c.QoS, c.Connections = 3, -1 }, []string{"qos: 3", "connections: -1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mutate(&cfg)
			es := cfg.Validate()
			if len(es) != len(c.want) {
				t.Fatalf("got %d errors (%v), want %d", len(es), es, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(es[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, es[i], w)
				}
				if es[i].Fix == "" {
					t.Errorf("error %q has no fix", es[i])
				}
			}
		})
	}
}

// The keys main.go maps its flags to must exist, with the types its flags give them.
func TestConfigKeysOfCLI(t *testing.T) {
	type root struct {
		Simulate Config `yaml:"simulate"`
	}
	dir := t.TempDir()
	flags := map[string]string{
		"simulate.broker": "tcp://127.0.0.1:1", "simulate.sensors": "", "simulate.fleet": "10",
		"simulate.interval": "250ms", "simulate.rate": "1500.5", "simulate.shape": "topic-ms",
		"simulate.topic": "p/{site}/{line}/{sensor}/{metric}", "simulate.qos": "0", "simulate.connections": "3",
		"simulate.count": "77", "simulate.duration": "1m", "simulate.seed": "-9",
		"simulate.truth": filepath.Join(dir, "t.ndjson"), "simulate.client_id": "sim",
		"simulate.faults.spike": "0.1", "simulate.faults.stuck": "0.01", "simulate.faults.gap": "0.02",
		"simulate.faults.duplicate": "0.03", "simulate.faults.late": "0.04",
		"simulate.faults.out_of_order": "0.05", "simulate.faults.malformed": "0.06",
	}
	var overrides []config.Override
	for k, v := range flags {
		overrides = append(overrides, config.Override{Key: k, Value: v, Origin: "flag"})
	}
	cfg := root{Simulate: DefaultConfig()}
	if err := config.Load("", &cfg, []string{"SLUICE_SIMULATE_PASSWORD=pw", "SLUICE_SIMULATE_USERNAME=u"}, overrides...); err != nil {
		t.Fatal(err)
	}
	got := cfg.Simulate
	want := Config{Broker: "tcp://127.0.0.1:1", Fleet: 10, Interval: 250 * time.Millisecond, Rate: 1500.5, Shape: ShapeTopicMS,
		Topic: "p/{site}/{line}/{sensor}/{metric}", QoS: 0, Connections: 3, Inflight: 1000, Count: 77, Duration: time.Minute, Seed: -9,
		Truth: filepath.Join(dir, "t.ndjson"), ClientID: "sim", Username: "u", Password: "pw", DrainTimeout: 30 * time.Second,
		Faults: FaultsConfig{Spike: 0.1, Stuck: 0.01, Gap: 0.02, Duplicate: 0.03, Late: 0.04, OutOfOrder: 0.05, Malformed: 0.06}}
	if got != want {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	var b strings.Builder
	if err := config.Document(&b, root{Simulate: got}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "pw") || !strings.Contains(b.String(), "out_of_order: 0.05") {
		t.Fatalf("Document leaks the password or lacks a key:\n%s", b.String())
	}
}
