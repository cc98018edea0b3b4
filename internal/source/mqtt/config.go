package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// Protocol versions accepted in Config.Protocol.
const (
	Protocol311 = "3.1.1"
	Protocol5   = "5"
)

// Config is the external-broker source's configuration: the "mqtt" section.
type Config struct {
	Broker      string   `yaml:"broker" doc:"External MQTT broker URL: mqtt:// or tcp:// (plain, default port 1883), mqtts://, ssl:// or tls:// (TLS, 8883), ws:// or wss:// (websockets, with the path, e.g. ws://host:8080/mqtt). \"\" runs the embedded broker instead (section broker), and the rest of this section is unused."`
	ClientID    string   `yaml:"client_id" doc:"Client id of sluice's persistent session. The broker keeps the session (subscriptions, unacknowledged messages) under this id while sluice is away: keep it fixed, and give each instance its own."`
	Topics      []string `yaml:"topics" doc:"Topic filters to subscribe to (MQTT wildcards + and # allowed)."`
	SharedGroup string   `yaml:"shared_group" doc:"When set, subscribe to $share/<group>/<filter> so that every instance in the group gets a share of the messages instead of all of them. \"\" = an ordinary subscription."`
	QoS         int      `yaml:"qos" doc:"Subscription QoS: 1 (at least once: nothing is lost, a message is acknowledged only once it is durable in the log) or 0 (at most once: the broker does not resend)."`
	Protocol    string   `yaml:"protocol" doc:"MQTT protocol version: 3.1.1 (the widest support) or 5."`

	Username string    `yaml:"username" doc:"User name to connect with. \"\" = anonymous."`
	Password string    `yaml:"password" doc:"Password for username." secret:"true"`
	TLS      TLSConfig `yaml:"tls" doc:"TLS for mqtts://, ssl://, tls:// and wss:// brokers."`

	KeepAlive           time.Duration `yaml:"keep_alive" doc:"MQTT keep-alive: the broker and sluice each drop a connection silent for 1.5 times this long. Whole seconds; 0 turns it off."`
	ConnectTimeout      time.Duration `yaml:"connect_timeout" doc:"Longest wait for the network connection, the broker's CONNACK and its SUBACK."`
	ReconnectBackoffMin time.Duration `yaml:"reconnect_backoff_min" doc:"Wait before the first reconnection attempt; doubled after each failure up to reconnect_backoff_max."`
	ReconnectBackoffMax time.Duration `yaml:"reconnect_backoff_max" doc:"Longest wait between reconnection attempts."`
	SessionExpiry       time.Duration `yaml:"session_expiry" doc:"MQTT 5 only: how long the broker keeps sluice's session, and queues its messages, after the connection is lost. Whole seconds, at least 1s. (MQTT 3.1.1 sessions last until the broker's own limit.)"`
	MaxInFlight         int           `yaml:"max_inflight" doc:"Most messages received and not yet acknowledged at once (1-65535). Sent to MQTT 5 brokers as Receive Maximum (65535, the protocol default, is not sent); with MQTT 3.1.1 the broker's own limit applies (Mosquitto: max_inflight_messages, default 20) and this bounds QoS 0 messages waiting for the log. More in flight means more messages per group commit."`
}

// TLSConfig is the TLS client configuration.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file" doc:"PEM file of the CA certificates that sign the broker's certificate. \"\" = the system's roots."`
	CertFile           string `yaml:"cert_file" doc:"PEM client certificate, for brokers that require one (with key_file)."`
	KeyFile            string `yaml:"key_file" doc:"PEM private key of cert_file."`
	ServerName         string `yaml:"server_name" doc:"Name to verify the broker's certificate against. \"\" = the host in broker."`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" doc:"Accept any broker certificate without verifying it. For tests only: it allows a man in the middle."`
}

// DefaultConfig returns the defaults: no external broker (the embedded one runs), client id "sluice",
// every topic at QoS 1 over MQTT 3.1.1, at most 1000 messages in flight.
func DefaultConfig() Config {
	return Config{
		ClientID:            "sluice",
		Topics:              []string{"#"},
		QoS:                 1,
		Protocol:            Protocol311,
		KeepAlive:           30 * time.Second,
		ConnectTimeout:      10 * time.Second,
		ReconnectBackoffMin: 500 * time.Millisecond,
		ReconnectBackoffMax: 30 * time.Second,
		SessionExpiry:       7 * 24 * time.Hour,
		MaxInFlight:         1000,
	}
}

// Validate implements config.Validator. With Broker empty (the embedded broker runs) nothing here is
// used, so nothing is checked.
func (c Config) Validate() config.Errors {
	var es config.Errors
	if c.Broker == "" {
		return nil
	}
	u, err := parseBroker(c.Broker)
	if err != nil {
		es.Add("broker", err.Error(), "write it as mqtt://host:1883, mqtts://host:8883 or ws://host:8080/mqtt")
	}
	es.Check(c.ClientID != "", "client_id", "is empty: a persistent session needs a fixed client id", "set a name unique to this instance, e.g. sluice-1")
	es.Check(len(c.ClientID) <= math.MaxUint16, "client_id", fmt.Sprintf("is %d bytes, over the MQTT limit of 65535", len(c.ClientID)), "use a shorter id")
	if len(c.Topics) == 0 {
		es.Add("topics", "is empty: nothing would be subscribed to", `list at least one filter, e.g. ["#"] or ["plant/+/telemetry/#"]`)
	}
	for i, t := range c.Topics {
		if err := validFilter(t); err != nil {
			es.Add("topics", fmt.Sprintf("filter %d, %q, %v", i+1, t, err), "write a filter such as sensors/# or plant/+/temperature")
		} else if strings.HasPrefix(t, "$share/") {
			es.Add("topics", fmt.Sprintf("filter %d, %q, is a shared subscription", i+1, t), "list the plain filter and set shared_group instead")
		}
	}
	if c.SharedGroup != "" && strings.ContainsAny(c.SharedGroup, "/+#\x00") {
		es.Add("shared_group", fmt.Sprintf("%q contains /, + or #", c.SharedGroup), "use a plain name such as sluice")
	}
	es.Check(c.QoS == 0 || c.QoS == 1, "qos", fmt.Sprintf("%d is not supported", c.QoS), "use 1 (no loss) or 0")
	es.Check(c.Protocol == Protocol311 || c.Protocol == Protocol5, "protocol", fmt.Sprintf("%q is not a supported MQTT version", c.Protocol), `use "3.1.1" or "5"`)
	es.Check(c.Password == "" || c.Username != "", "password", "is set without username", "set username too (MQTT sends no password without a user name)")
	switch {
	case u != nil && !isTLSScheme(u.Scheme) && c.TLS.set():
		es.Add("tls."+c.TLS.firstSet(), fmt.Sprintf("is set but broker is a %s:// URL, without TLS", u.Scheme), "use mqtts:// or wss://, or remove the tls settings")
	case (c.TLS.CertFile == "") != (c.TLS.KeyFile == ""):
		es.Add("tls.cert_file", "cert_file and key_file must be set together", "set both files, or neither")
	case u != nil:
		if _, err := c.TLS.build(); err != nil {
			var fe *fileError
			if errors.As(err, &fe) {
				es.Add("tls."+fe.key, fe.err.Error(), "give a readable PEM file (and its matching key)")
			}
		}
	}
	es.Check(c.KeepAlive == 0 || (c.KeepAlive >= time.Second && c.KeepAlive <= math.MaxUint16*time.Second && c.KeepAlive%time.Second == 0),
		"keep_alive", fmt.Sprintf("%s is not 0 or whole seconds from 1s to 65535s", c.KeepAlive), "use e.g. 30s")
	es.Check(c.ConnectTimeout > 0, "connect_timeout", "must be positive", "use e.g. 10s")
	es.Check(c.ReconnectBackoffMin > 0, "reconnect_backoff_min", "must be positive", "use e.g. 500ms")
	es.Check(c.ReconnectBackoffMax >= c.ReconnectBackoffMin, "reconnect_backoff_max",
		fmt.Sprintf("%s is less than reconnect_backoff_min (%s)", c.ReconnectBackoffMax, c.ReconnectBackoffMin), "make it at least reconnect_backoff_min, e.g. 30s")
	if c.Protocol == Protocol5 {
		es.Check(c.SessionExpiry >= time.Second && c.SessionExpiry <= math.MaxUint32*time.Second && c.SessionExpiry%time.Second == 0,
			"session_expiry", fmt.Sprintf("%s is not whole seconds from 1s to 4294967295s", c.SessionExpiry),
			"use e.g. 168h: with 0 the broker would drop the session, and the messages it holds, on every disconnection")
	}
	es.Check(c.MaxInFlight >= 1 && c.MaxInFlight <= math.MaxUint16, "max_inflight", fmt.Sprintf("%d is outside 1-65535", c.MaxInFlight), "use e.g. 1000")
	return es
}

// filters returns the topic filters to subscribe to, with the shared-subscription prefix applied.
func (c *Config) filters() []string {
	out := make([]string, len(c.Topics))
	for i, t := range c.Topics {
		if c.SharedGroup != "" {
			t = "$share/" + c.SharedGroup + "/" + t
		}
		out[i] = t
	}
	return out
}

// parseBroker parses and checks a broker URL, filling in the scheme's default port.
func parseBroker(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", s)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	port := ""
	switch u.Scheme {
	case "mqtt", "tcp":
		port = "1883"
	case "mqtts", "ssl", "tls":
		port = "8883"
	case "ws":
		port = "80"
	case "wss":
		port = "443"
	default:
		return nil, fmt.Errorf("%q: scheme %q is not one of mqtt, tcp, mqtts, ssl, tls, ws, wss", s, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q holds credentials, which would be printed in logs", redact(u))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" && (u.Path != "" && u.Path != "/" || u.RawQuery != "") {
		return nil, fmt.Errorf("%q has a path or query, which only ws:// and wss:// use", s)
	}
	return u, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func isTLSScheme(s string) bool {
	switch s {
	case "mqtts", "ssl", "tls", "wss":
		return true
	}
	return false
}

// validFilter checks an MQTT topic filter (MQTT 3.1.1 section 4.7, MQTT 5 section 4.7).
func validFilter(f string) error {
	if f == "" {
		return errors.New("is empty")
	}
	if len(f) > math.MaxUint16 {
		return errors.New("is longer than 65535 bytes")
	}
	if strings.ContainsRune(f, 0) {
		return errors.New("contains a NUL character")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return errors.New("# must be a whole level, and the last one")
		case strings.Contains(l, "+") && l != "+":
			return errors.New("+ must be a whole level")
		}
	}
	return nil
}

func (t TLSConfig) set() bool { return t.firstSet() != "" }

// firstSet returns the key of the first TLS setting that is set, or "".
func (t TLSConfig) firstSet() string {
	switch {
	case t.CAFile != "":
		return "ca_file"
	case t.CertFile != "":
		return "cert_file"
	case t.KeyFile != "":
		return "key_file"
	case t.ServerName != "":
		return "server_name"
	case t.InsecureSkipVerify:
		return "insecure_skip_verify"
	}
	return ""
}

// fileError is a TLS file that could not be used; key names its setting.
type fileError struct {
	key string
	err error
}

func (e *fileError) Error() string { return e.key + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// build returns the *tls.Config for t (ServerName is filled in by the dialer when empty).
func (t TLSConfig) build() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &fileError{"ca_file", err}
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &fileError{"ca_file", fmt.Errorf("%s holds no PEM certificate", t.CAFile)}
		}
	}
	if t.CertFile != "" && t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &fileError{"cert_file", err}
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
