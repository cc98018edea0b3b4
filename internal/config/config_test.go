package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Broker   string        `yaml:"broker" doc:"Broker URL."`
	QoS      int           `yaml:"qos" doc:"QoS, 0 or 1."`
	Password string        `yaml:"password" doc:"Password." secret:"true"`
	Topics   []string      `yaml:"topics" doc:"Topic filters."`
	Timeout  time.Duration `yaml:"timeout" doc:"Timeout."`
	Size     Bytes         `yaml:"size" doc:"Size."`
}

func (c inner) Validate() Errors {
	var es Errors
	es.Check(c.QoS == 0 || c.QoS == 1, "qos", "must be 0 or 1", "use 0 or 1")
	es.Check(c.Size > 0, "size", "must be positive", "use at least 1KiB")
	return es
}

type root struct {
	DataDir string `yaml:"data_dir" doc:"Where data lives."`
	MQTT    inner  `yaml:"mqtt"`
}

func defaults() root {
	return root{DataDir: "./d", MQTT: inner{Broker: "mqtt://x", Topics: []string{"#"}, Timeout: time.Second, Size: 64 << 20}}
}

func write(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		env     []string
		check   func(t *testing.T, c root)
		wantErr []string // substrings, one per expected error line
	}{
		{name: "defaults only", check: func(t *testing.T, c root) {
			if c.MQTT.Broker != "mqtt://x" || c.MQTT.Size != 64<<20 {
				t.Fatalf("defaults changed: %+v", c)
			}
		}},
		{name: "file overrides", yaml: "mqtt:\n  broker: tcp://b:1883\n  timeout: 5s\n  size: 1MiB\n  topics: [a/#, b/#]\n", check: func(t *testing.T, c root) {
			if c.MQTT.Broker != "tcp://b:1883" || c.MQTT.Timeout != 5*time.Second || c.MQTT.Size != 1<<20 || len(c.MQTT.Topics) != 2 || c.DataDir != "./d" {
				t.Fatalf("got %+v", c)
			}
		}},
		{name: "env overrides file", yaml: "mqtt:\n  broker: tcp://file\n", env: []string{"SLUICE_MQTT_BROKER=tcp://env", "SLUICE_MQTT_TOPICS=a/#, b/#", "SLUICE_DATA_DIR=/x", "HOME=/root"}, check: func(t *testing.T, c root) {
			if c.MQTT.Broker != "tcp://env" || c.DataDir != "/x" || strings.Join(c.MQTT.Topics, "|") != "a/#|b/#" {
				t.Fatalf("got %+v", c)
			}
		}},
		{name: "unknown key with suggestion", yaml: "mqtt:\n  brokr: x\n", wantErr: []string{`mqtt.brokr: unknown key (sluice.yaml:2); fix: did you mean "broker"?`}},
		{name: "unknown top-level key lists keys", yaml: "nope: 1\n", wantErr: []string{"nope: unknown key (sluice.yaml:1); fix: remove it; keys here are data_dir, mqtt"}},
		{name: "validation names file and line", yaml: "data_dir: y\nmqtt:\n  qos: 2\n", wantErr: []string{"mqtt.qos: must be 0 or 1 (sluice.yaml:3); fix: use 0 or 1"}},
		{name: "validation names env var", env: []string{"SLUICE_MQTT_QOS=5", "SLUICE_MQTT_SIZE=0"}, wantErr: []string{"mqtt.qos: must be 0 or 1 (env SLUICE_MQTT_QOS)", "mqtt.size: must be positive (env SLUICE_MQTT_SIZE)"}},
		{name: "bad env value", env: []string{"SLUICE_MQTT_TIMEOUT=soon"}, wantErr: []string{`mqtt.timeout: "soon" is not a duration`}},
		{name: "bad size", yaml: "mqtt:\n  size: lots\n", wantErr: []string{`"lots" is not a size`}},
		{name: "wrong type", yaml: "mqtt:\n  qos: [1]\n", wantErr: []string{"cannot unmarshal"}},
		{name: "bad yaml", yaml: "mqtt: [\n", wantErr: []string{"fix: correct the YAML syntax"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := defaults()
			path := ""
			if c.yaml != "" {
				path = write(t, c.yaml)
			}
			err := Load(path, &cfg, c.env)
			if len(c.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, cfg)
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.wantErr)
			}
			var es Errors
			if errors.As(err, &es) && len(es) != len(c.wantErr) {
				t.Fatalf("got %d errors (%v), want %d", len(es), err, len(c.wantErr))
			}
			msg := err.Error()
			if path != "" {
				msg = strings.ReplaceAll(msg, filepath.Dir(path)+"/", "")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(msg, w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	cfg := defaults()
	p := write(t, "mqtt:\n  broker: tcp://file\n")
	err := Load(p, &cfg, []string{"SLUICE_MQTT_BROKER=tcp://env"}, Override{Key: "mqtt.broker", Value: "tcp://flag", Origin: "flag --broker"}, Override{Key: "data_dir", Value: "/f", Origin: "flag --data-dir"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Broker != "tcp://flag" || cfg.DataDir != "/f" {
		t.Fatalf("flags must win over env and file: %+v", cfg)
	}
	err = Load("", &cfg, nil, Override{Key: "mqtt.qos", Value: "7", Origin: "flag --qos"})
	if err == nil || !strings.Contains(err.Error(), "mqtt.qos: must be 0 or 1 (flag --qos)") {
		t.Fatalf("error must name the flag: %v", err)
	}
}

func TestDocument(t *testing.T) {
	cfg := defaults()
	cfg.MQTT.Password = "hunter2"
	var b strings.Builder
	if err := Document(&b, cfg); err != nil {
		t.Fatal(err)
	}
	want := `# Where data lives.
# env: SLUICE_DATA_DIR
data_dir: ./d

mqtt:
  # Broker URL.
  # env: SLUICE_MQTT_BROKER
  broker: mqtt://x
  # QoS, 0 or 1.
  # env: SLUICE_MQTT_QOS
  qos: 0
  # Password.
  # env: SLUICE_MQTT_PASSWORD
  password: ""
  # Topic filters.
  # env: SLUICE_MQTT_TOPICS
  topics: ['#']
  # Timeout.
  # env: SLUICE_MQTT_TIMEOUT
  timeout: 1s
  # Size.
  # env: SLUICE_MQTT_SIZE
  size: 64MiB
`
	if b.String() != want {
		t.Fatalf("Document:\n%s\nwant:\n%s", b.String(), want)
	}
	// What Document prints loads back to the same values.
	p := write(t, b.String())
	got := root{}
	if err := Load(p, &got, nil); err != nil {
		t.Fatal(err)
	}
	if got.MQTT.Timeout != time.Second || got.MQTT.Size != 64<<20 || got.MQTT.Topics[0] != "#" || got.DataDir != "./d" {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestOriginOfListElement(t *testing.T) {
	origins := map[string]string{"decode.mappings": "sluice.yaml:7", "data_dir": "env SLUICE_DATA_DIR"}
	for key, want := range map[string]string{
		"decode.mappings[1].topic": "sluice.yaml:7",
		"decode.mappings[0]":       "sluice.yaml:7",
		"data_dir":                 "env SLUICE_DATA_DIR",
		"mqtt.broker":              "",
	} {
		if got := originOf(key, origins); got != want {
			t.Errorf("originOf(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestEnvUnknown(t *testing.T) {
	got := EnvUnknown(defaults(), []string{"SLUICE_MQTT_BROKER=x", "SLUICE_MQTT_BROKR=y", "PATH=/bin"})
	if len(got) != 1 || got[0] != "SLUICE_MQTT_BROKR" {
		t.Fatalf("EnvUnknown = %v", got)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]Bytes{"512": 512, "64KiB": 64 << 10, "128MiB": 128 << 20, "1.5GiB": 3 << 29, "10MB": 10e6, "7B": 7} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "5 parsecs"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", in)
		}
	}
}
