package broker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-project/sluice/internal/config"
	"github.com/sluice-project/sluice/internal/log/memlog"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if es := c.Validate(); len(es) != 0 {
		t.Fatalf("defaults invalid: %v", es)
	}
	if c.Listen != "127.0.0.1:1883" || c.WebsocketListen != "" || c.TLS.Listen != "" || c.MaxMessageSize != 1<<20 ||
		c.Username != "" || !slices.Equal(c.Topics, []string{"#"}) {
		t.Fatalf("defaults changed: %+v", c)
	}
	var b strings.Builder
	if err := config.Document(&b, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen: 127.0.0.1:1883\n", "# env: SLUICE_LISTEN\n", "max_message_size: 1MiB\n", "topics: ['#']\n", "  cert_file: \"\"\n"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("documented config lacks %q:\n%s", want, b.String())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		set  func(*Config)
		want []string // "key: problem" prefixes, in order
	}{
		{"all listeners off is fine here (app checks a way in)", func(c *Config) { c.Listen = "" }, nil},
		{"bad listen", func(c *Config) { c.Listen = "1883" }, []string{`listen: "1883" is not host:port`}},
		{"port out of range", func(c *Config) { c.WebsocketListen = "127.0.0.1:70000" }, []string{`websocket_listen: "127.0.0.1:70000" is not host:port`}},
		{"tls without files", func(c *Config) { c.TLS.Listen = "127.0.0.1:8883" }, []string{"tls.cert_file: is empty", "tls.key_file: is empty"}},
		{"tls files without listen", func(c *Config) { c.TLS.CertFile = "c.pem" }, []string{"tls.listen: is empty"}},
		{"user without password", func(c *Config) { c.Username = "u" }, []string{"username: username and password must be set together"}},
		{"password without user", func(c *Config) { c.Password = "p" }, []string{"username: username and password must be set together"}},
		{"zero size", func(c *Config) { c.MaxMessageSize = 0 }, []string{"max_message_size: 0 is out of range"}},
		{"size past MQTT's limit", func(c *Config) { c.MaxMessageSize = 256 << 20 }, []string{"max_message_size: 256MiB is out of range"}},
		{"no topics", func(c *Config) { c.Topics = nil }, []string{"topics: is empty"}},
		{"bad filters", func(c *Config) { c.Topics = []string{"a/#/b", "a+", "ok/+/x", "$SYS/#", ""} }, []string{
			`topics: "a/#/b" is not a valid`, `topics: "a+" is not a valid`, `topics: "$SYS/#" names a $ topic`, `topics: "" is not a valid`}},
		{"receive maximum", func(c *Config) { c.ReceiveMaximum = 0 }, []string{"receive_maximum: 0 is out of range"}},
		{"receive maximum too big", func(c *Config) { c.ReceiveMaximum = 70000 }, []string{"receive_maximum: 70000 is out of range"}},
		{"pending bytes", func(c *Config) { c.PendingBytes = 1000 }, []string{"pending_bytes: 1000 is below 64KiB"}},
		{"subscriber queue", func(c *Config) { c.SubscriberQueue = 0 }, []string{"subscriber_queue: 0 is out of range"}},
		{"subscriber queue too big", func(c *Config) { c.SubscriberQueue = 65536 }, []string{"subscriber_queue: 65536 is out of range"}},
		{"negative expiry", func(c *Config) { c.SessionExpiry = -time.Second }, []string{"session_expiry: -1s is out of range"}},
		{"append timeout", func(c *Config) { c.AppendTimeout = 0 }, []string{"append_timeout: 0s is not positive"}},
		{"max clients", func(c *Config) { c.MaxClients = -1 }, []string{"max_clients: -1 is negative"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.set(&cfg)
			es := cfg.Validate()
			if len(es) != len(c.want) {
				t.Fatalf("got %d errors %v, want %d %v", len(es), es, len(c.want), c.want)
			}
			for i, e := range es {
				if !strings.HasPrefix(e.Error(), c.want[i]) || e.Fix == "" {
					t.Fatalf("error %d = %q (fix %q), want prefix %q and a fix", i, e.Error(), e.Fix, c.want[i])
				}
			}
			if len(c.want) > 0 {
				if _, err := New(cfg, memlog.New(), nil, nil); err == nil || !strings.Contains(err.Error(), c.want[0]) {
					t.Fatalf("New = %v, want the validation error", err)
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(testConfig(), nil, nil, nil); err == nil {
		t.Fatal("New without a log succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(testConfig(), memlog.New(), nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(testConfig(), memlog.New(), nil, reg); err == nil || !strings.Contains(err.Error(), "register broker metrics") {
		t.Fatalf("second broker on one registry: %v, want a registration error", err)
	}
	cfg := testConfig()
	cfg.Listen = ""
	b, err := New(cfg, memlog.New(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil || !strings.Contains(err.Error(), "no listener configured") {
		t.Fatalf("Start with no listener = %v", err)
	}
}
