package mqtt

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/config"
	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if es := c.Validate(); len(es) != 0 {
		t.Fatalf("defaults (embedded mode) invalid: %v", es)
	}
	c.Broker = "mqtt://127.0.0.1:1883"
	if es := c.Validate(); len(es) != 0 {
		t.Fatalf("defaults with a broker invalid: %v", es)
	}
	c.Protocol = Protocol5
	if es := c.Validate(); len(es) != 0 {
		t.Fatalf("defaults with MQTT 5 invalid: %v", es)
	}
}

func TestValidate(t *testing.T) {
	ct := testkit.NewPKI(t)
	cases := []struct {
		name    string
		mod     func(c *Config)
		wantKey string // "" = valid
		wantMsg string
	}{
		{"embedded mode ignores everything", func(c *Config) { c.Broker, c.QoS, c.ClientID, c.Topics = "", 2, "", nil }, "", ""},
		{"tcp", func(c *Config) { c.Broker = "tcp://b:1883" }, "", ""},
		{"no port", func(c *Config) { c.Broker = "mqtt://broker" }, "", ""},
		{"mqtts with tls", func(c *Config) {
			c.Broker, c.TLS = "mqtts://b", TLSConfig{CAFile: ct.CAFile, CertFile: ct.ClientCertFile, KeyFile: ct.ClientKeyFile}
		}, "", ""},
		{"ws with path", func(c *Config) { c.Broker = "ws://b:8080/mqtt" }, "", ""},
		{"shared group", func(c *Config) { c.SharedGroup = "sluice" }, "", ""},
		{"v5", func(c *Config) { c.Protocol = Protocol5 }, "", ""},
		{"qos 0", func(c *Config) { c.QoS = 0 }, "", ""},
		{"keep-alive off", func(c *Config) { c.KeepAlive = 0 }, "", ""},
		{"bad scheme", func(c *Config) { c.Broker = "http://b:1883" }, "broker", `scheme "http" is not one of`},
		{"no host", func(c *Config) { c.Broker = "mqtt://:1883" }, "broker", "has no host"},
		{"credentials in URL", func(c *Config) { c.Broker = "mqtt://u:p@b:1883" }, "broker", "holds credentials"},
		{"path on tcp", func(c *Config) { c.Broker = "mqtt://b:1883/x" }, "broker", "only ws:// and wss://"},
		{"empty client id", func(c *Config) { c.ClientID = "" }, "client_id", "is empty"},
		{"no topics", func(c *Config) { c.Topics = nil }, "topics", "is empty"},
		{"empty filter", func(c *Config) { c.Topics = []string{"a/#", ""} }, "topics", `filter 2, "", is empty`},
		{"hash not last", func(c *Config) { c.Topics = []string{"a/#/b"} }, "topics", "# must be a whole level, and the last one"},
		{"hash in level", func(c *Config) { c.Topics = []string{"a/b#"} }, "topics", "# must be a whole level"},
		{"plus in level", func(c *Config) { c.Topics = []string{"a/b+/c"} }, "topics", "+ must be a whole level"},
		{"shared filter", func(c *Config) { c.Topics = []string{"$share/g/a/#"} }, "topics", "is a shared subscription"},
		{"bad group", func(c *Config) { c.SharedGroup = "a/b" }, "shared_group", "contains /, + or #"},
		{"qos 2", func(c *Config) { c.QoS = 2 }, "qos", "2 is not supported"},
		{"protocol 3.1", func(c *Config) { c.Protocol = "3.1" }, "protocol", `"3.1" is not a supported MQTT version`},
		{"password without user", func(c *Config) { c.Password = "x" }, "password", "without username"},
		{"tls on plain URL", func(c *Config) { c.TLS.CAFile = "/x" }, "tls.ca_file", "mqtt:// URL, without TLS"},
		{"cert without key", func(c *Config) { c.Broker = "mqtts://b"; c.TLS.CertFile = "/x" }, "tls.cert_file", "must be set together"},
		{"missing CA file", func(c *Config) { c.Broker = "mqtts://b"; c.TLS.CAFile = "/nonexistent/ca.pem" }, "tls.ca_file", "no such file"},
		{"CA file not PEM", func(c *Config) { c.Broker = "mqtts://b"; c.TLS.CAFile = ct.ClientKeyFile }, "tls.ca_file", "holds no PEM certificate"},
		{"key does not match", func(c *Config) {
			c.Broker, c.TLS = "mqtts://b", TLSConfig{CertFile: ct.ClientCertFile, KeyFile: ct.ServerKeyFile}
		}, "tls.cert_file", "private key does not match public key"},
		{"sub-second keep-alive", func(c *Config) { c.KeepAlive = 1500 * time.Millisecond }, "keep_alive", "not 0 or whole seconds"},
		{"huge keep-alive", func(c *Config) { c.KeepAlive = 70000 * time.Second }, "keep_alive", "not 0 or whole seconds"},
		{"no connect timeout", func(c *Config) { c.ConnectTimeout = 0 }, "connect_timeout", "must be positive"},
		{"no backoff", func(c *Config) { c.ReconnectBackoffMin = 0 }, "reconnect_backoff_min", "must be positive"},
		{"backoff max below min", func(c *Config) { c.ReconnectBackoffMax = time.Millisecond }, "reconnect_backoff_max", "less than reconnect_backoff_min"},
		{"v5 session expiry 0", func(c *Config) { c.Protocol = Protocol5; c.SessionExpiry = 0 }, "session_expiry", "not whole seconds from 1s"},
		{"v3 ignores session expiry", func(c *Config) { c.SessionExpiry = 0 }, "", ""},
		{"max inflight 0", func(c *Config) { c.MaxInFlight = 0 }, "max_inflight", "outside 1-65535"},
		{"max inflight too big", func(c *Config) { c.MaxInFlight = 70000 }, "max_inflight", "outside 1-65535"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Broker = "mqtt://127.0.0.1:1883"
			tc.mod(&cfg)
			es := cfg.Validate()
			if tc.wantKey == "" {
				if len(es) != 0 {
					t.Fatalf("want valid, got %v", es)
				}
				return
			}
			if len(es) != 1 {
				t.Fatalf("want exactly one error on %s, got %d: %v", tc.wantKey, len(es), es)
			}
			e := es[0]
			if e.Key != tc.wantKey || !strings.Contains(e.Problem, tc.wantMsg) || e.Fix == "" {
				t.Fatalf("got %s: %q (fix %q), want key %s, problem containing %q and a fix", e.Key, e.Problem, e.Fix, tc.wantKey, tc.wantMsg)
			}
		})
	}
}

// TestConfigTags checks that every setting is documented and the password is a secret.
func TestConfigTags(t *testing.T) {
	var check func(rt reflect.Type, path string)
	check = func(rt reflect.Type, path string) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			key := path + f.Tag.Get("yaml")
			if f.Tag.Get("yaml") == "" || f.Tag.Get("doc") == "" {
				t.Errorf("field %s lacks a yaml or doc tag", f.Name)
			}
			wantSecret := slices.Contains([]string{"password"}, key)
			if (f.Tag.Get("secret") == "true") != wantSecret {
				t.Errorf("%s: secret tag %q, want secret=%v", key, f.Tag.Get("secret"), wantSecret)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				check(f.Type, key+".")
			}
		}
	}
	check(reflect.TypeOf(Config{}), "")
}

func TestParseBroker(t *testing.T) {
	cases := []struct{ in, want string }{
		{"mqtt://b", "mqtt://b:1883"},
		{"TCP://b:1884", "tcp://b:1884"},
		{"mqtts://b", "mqtts://b:8883"},
		{"ssl://b", "ssl://b:8883"},
		{"tls://10.0.0.1", "tls://10.0.0.1:8883"},
		{"ws://b/mqtt", "ws://b:80/mqtt"},
		{"wss://b:9001/mqtt", "wss://b:9001/mqtt"},
		{"mqtt://[::1]", "mqtt://[::1]:1883"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			u, err := parseBroker(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != c.want {
				t.Fatalf("parseBroker(%q) = %q, want %q", c.in, u, c.want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	c := DefaultConfig()
	c.Topics = []string{"a/#", "+/b"}
	if got := c.filters(); !slices.Equal(got, []string{"a/#", "+/b"}) {
		t.Fatalf("filters() = %v", got)
	}
	c.SharedGroup = "g"
	if got := c.filters(); !slices.Equal(got, []string{"$share/g/a/#", "$share/g/+/b"}) {
		t.Fatalf("filters() with a group = %v", got)
	}
}

func TestBackoff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Broker = "mqtt://127.0.0.1:1"
	cfg.ReconnectBackoffMin, cfg.ReconnectBackoffMax = 100*time.Millisecond, 1*time.Second
	s, err := New(cfg, memlog.New(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		attempt  int
		low, top time.Duration // the wait is in [low, top]
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{50, 500 * time.Millisecond, time.Second},
		{1 << 30, 500 * time.Millisecond, time.Second},
	}
	for _, c := range cases {
		for range 100 {
			if d := s.backoff(c.attempt); d < c.low || d > c.top {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", c.attempt, d, c.low, c.top)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	cfg := DefaultConfig()
	if _, err := New(cfg, memlog.New(), testLogger(t), nil); err == nil || !strings.Contains(err.Error(), "mqtt.broker is empty") {
		t.Fatalf("New without a broker: %v", err)
	}
	cfg.Broker, cfg.QoS = "mqtt://b", 2
	if _, err := New(cfg, memlog.New(), testLogger(t), nil); err == nil || !strings.Contains(err.Error(), "qos: 2 is not supported") {
		t.Fatalf("New with qos 2: %v", err)
	}
}

// TestConfigLoad loads the section the way sluice does (file, then environment, as the e2e tests set
// it) and prints it the way `sluice config` does.
func TestConfigLoad(t *testing.T) {
	type root struct {
		MQTT Config `yaml:"mqtt"`
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "sluice.yaml")
	yml := "mqtt:\n  broker: mqtts://broker.example:8883\n  password: hunter2\n  username: sluice\n  qos: 1\n  protocol: 5\n  tls:\n    server_name: broker.example\n  keep_alive: 45s\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := root{MQTT: DefaultConfig()}
	env := []string{"SLUICE_MQTT_TOPICS=e2e-1/#, plant/+/t", "SLUICE_MQTT_CLIENT_ID=sluice-e2e-1", "SLUICE_MQTT_MAX_INFLIGHT=64"}
	if err := config.Load(file, &r, env); err != nil {
		t.Fatal(err)
	}
	c := r.MQTT
	if c.Broker != "mqtts://broker.example:8883" || c.Protocol != Protocol5 || c.Username != "sluice" || c.Password != "hunter2" ||
		c.TLS.ServerName != "broker.example" || c.KeepAlive != 45*time.Second || c.ClientID != "sluice-e2e-1" || c.MaxInFlight != 64 ||
		!slices.Equal(c.Topics, []string{"e2e-1/#", "plant/+/t"}) {
		t.Fatalf("loaded %+v", c)
	}

	bad := root{MQTT: DefaultConfig()}
	err := config.Load("", &bad, []string{"SLUICE_MQTT_BROKER=mqtt://b", "SLUICE_MQTT_QOS=2"})
	if err == nil || !strings.Contains(err.Error(), "mqtt.qos: 2 is not supported (env SLUICE_MQTT_QOS); fix: use 1 (no loss) or 0") {
		t.Fatalf("qos 2: %v", err)
	}

	var b strings.Builder
	if err := config.Document(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"# env: SLUICE_MQTT_BROKER", "# env: SLUICE_MQTT_TLS_CA_FILE", "password: \"\"", "max_inflight: 64", "shared_group:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("sluice config output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("the password is printed:\n%s", out)
	}
}
