package broker

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// maxPacketLimit is the largest MQTT packet the protocol can carry (a 4-byte remaining length).
const maxPacketLimit = 268435455

// packetHeadroom is what a PUBLISH packet carries beside its payload at most in practice: the fixed
// header (5 bytes), a topic of up to 65535 bytes with its length, the packet id and MQTT 5 properties.
// The packet limit is max_message_size plus this, so a payload of max_message_size always fits.
const packetHeadroom = 64<<10 + 4<<10

// minPendingBytes is the smallest broker.pending_bytes: room for a few messages at once.
const minPendingBytes = 64 << 10

// Config is the embedded MQTT broker's configuration (yaml section "broker").
type Config struct {
	Listen          string        `yaml:"listen" doc:"TCP address of the embedded MQTT broker (MQTT 3.1.1 and 5). \"\" disables the plain TCP listener."`
	WebsocketListen string        `yaml:"websocket_listen" doc:"Address for MQTT over websockets (ws://host:port/, subprotocol mqtt), e.g. 127.0.0.1:8083. \"\" (default) disables it."`
	TLS             TLSConfig     `yaml:"tls" doc:"MQTT over TLS (mqtts), optionally with client certificates (mutual TLS)."`
	Username        string        `yaml:"username" doc:"When set (with password), every client must connect with this username and password. Default: anonymous, fit only for loopback."`
	Password        string        `yaml:"password" doc:"Password for username." secret:"true"`
	MaxMessageSize  config.Bytes  `yaml:"max_message_size" doc:"Largest payload always accepted and stored as it is (the decoder quarantines ones too large to decode). A packet larger than this plus 68KiB (room for the topic and MQTT 5 properties) closes the connection."`
	Topics          []string      `yaml:"topics" doc:"Topic filters whose messages are appended to the log. Default all (#); $SYS topics are never appended. Messages on other topics are still routed to subscribers."`
	ReceiveMaximum  int           `yaml:"receive_maximum" doc:"QoS 1 and 2 messages one client may have unacknowledged (MQTT 5 receive maximum, sent in CONNACK), 1 to 65535. With pipeline, each waiting message holds ~2KiB plus its payload; pending_bytes bounds what all clients together hold. One connection at QoS 1 through the embedded broker (1,000 sensors, as fast as acknowledged, this 2-core machine): 128: 21,600 msg/s; 256: 22,800–26,100; 512: 27,900; 1024: 28,000–28,600."`
	SubscriberQueue int           `yaml:"subscriber_queue" doc:"Messages the broker holds for one subscribing client, 1 to 65535: QoS 1 and 2 messages sent and not yet acknowledged, and messages of any QoS waiting to be written to its connection. Past it the broker drops further messages for that client (as Mosquitto's max_queued_messages does), counts them in sluice_broker_subscriber_dropped_total and logs a warning. It bounds only what subscribers receive: an ingested message is in the log before its PUBACK, whoever subscribes. Each client's write queue takes 8 bytes a slot when it connects."`
	SessionExpiry   time.Duration `yaml:"session_expiry" doc:"Longest time a disconnected client's persistent session (clean session false, or an MQTT 5 session expiry) is kept, in memory. Sessions do not survive a restart; publishers resend what was not acknowledged."`
	AppendTimeout   time.Duration `yaml:"append_timeout" doc:"Longest wait for the log to make a QoS 1 or 2 message durable. Past it the publisher is disconnected without an acknowledgement and resends when it reconnects."`
	MaxClients      int           `yaml:"max_clients" doc:"Most clients connected at once; further connections are refused. 0 means no limit."`
	PendingBytes    config.Bytes  `yaml:"pending_bytes" doc:"Most memory the broker holds for messages it has read and the log has not yet made durable (pipelined QoS 1 and 2: not yet acknowledged), over all connections; each message counts its topic and payload plus 2KiB of the broker's own state. While it is all taken, connections wait before reading their next message (TCP backpressure), which sluice_broker_pending_waits_total counts and a warning (at most every 10s) reports; a message that waits longer than append_timeout is not stored (QoS 1 and 2: its publisher is disconnected without an acknowledgement and resends it; QoS 0: counted in sluice_broker_append_errors_total). It bounds memory however many clients publish: receive_maximum alone allows clients × receive_maximum messages, and QoS 0 messages without limit while the log cannot write (a full disk)."`
	Pipeline        bool          `yaml:"pipeline" doc:"Let each connection have up to receive_maximum QoS 1 and 2 messages waiting for the log at once, instead of one: they share group commits, so a single connection (a gateway bridging many sensors) is no longer held to one message per commit. PUBACKs still follow durability, in order. Default on: 7x the QoS 1 throughput of off in bench/RESULTS.md."`
}

// TLSConfig is the broker's TLS listener.
type TLSConfig struct {
	Listen       string `yaml:"listen" doc:"Address of the MQTT over TLS listener, e.g. 0.0.0.0:8883. \"\" (default) disables it."`
	CertFile     string `yaml:"cert_file" doc:"PEM certificate (chain) the broker presents."`
	KeyFile      string `yaml:"key_file" doc:"PEM private key for cert_file."`
	ClientCAFile string `yaml:"client_ca_file" doc:"PEM CA certificates; when set, every TLS client must present a certificate signed by one of them (mutual TLS)."`
}

// DefaultConfig returns the defaults: plain TCP on 127.0.0.1:1883, anonymous, no TLS or websockets,
// payloads up to 1MiB, every topic but $SYS ingested.
func DefaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:1883",
		MaxMessageSize:  1 << 20,
		Topics:          []string{"#"},
		ReceiveMaximum:  512,
		SubscriberQueue: 8192,
		SessionExpiry:   24 * time.Hour,
		AppendTimeout:   10 * time.Second,
		Pipeline:        true,
		PendingBytes:    16 << 20,
	}
}

// Validate implements config.Validator. Keys are relative to the broker section.
func (c Config) Validate() config.Errors {
	var es config.Errors
	checkAddr(&es, "listen", c.Listen, "127.0.0.1:1883")
	checkAddr(&es, "websocket_listen", c.WebsocketListen, "127.0.0.1:8083")
	checkAddr(&es, "tls.listen", c.TLS.Listen, "0.0.0.0:8883")
	if c.TLS.Listen != "" {
		es.Check(c.TLS.CertFile != "", "tls.cert_file", "is empty but tls.listen is set", "set the PEM certificate file, or clear tls.listen")
		es.Check(c.TLS.KeyFile != "", "tls.key_file", "is empty but tls.listen is set", "set the PEM private key file, or clear tls.listen")
	} else if c.TLS.CertFile != "" || c.TLS.KeyFile != "" || c.TLS.ClientCAFile != "" {
		es.Add("tls.listen", "is empty, so the TLS files set have no effect", "set tls.listen (e.g. 0.0.0.0:8883), or clear the tls section")
	}
	es.Check((c.Username == "") == (c.Password == ""), "username", "username and password must be set together", "set both, or neither for anonymous access")
	es.Check(c.MaxMessageSize > 0 && c.MaxMessageSize <= maxPacketLimit-packetHeadroom, "max_message_size",
		fmt.Sprintf("%s is out of range", c.MaxMessageSize), fmt.Sprintf("use 1 byte to %s (MQTT's packet limit less room for the topic)", config.Bytes(maxPacketLimit-packetHeadroom)))
	if len(c.Topics) == 0 {
		es.Add("topics", "is empty, so no message would be stored", "list topic filters, e.g. [\"#\"] for all")
	}
	for _, f := range c.Topics {
		switch {
		case !validFilter(f):
			es.Add("topics", fmt.Sprintf("%q is not a valid MQTT topic filter", f), "use filters such as plant/+/temperature or sensors/#")
		case strings.HasPrefix(f, "$"):
			es.Add("topics", fmt.Sprintf("%q names a $ topic; $SYS and $share are never ingested", f), "remove it")
		}
	}
	es.Check(c.ReceiveMaximum >= 1 && c.ReceiveMaximum <= math.MaxUint16, "receive_maximum",
		fmt.Sprintf("%d is out of range", c.ReceiveMaximum), "use 1 to 65535 (default 512)")
	es.Check(c.SubscriberQueue >= 1 && c.SubscriberQueue <= math.MaxUint16, "subscriber_queue",
		fmt.Sprintf("%d is out of range", c.SubscriberQueue), "use 1 to 65535 (default 8192)")
	es.Check(c.SessionExpiry >= 0 && c.SessionExpiry <= math.MaxUint32*time.Second, "session_expiry",
		fmt.Sprintf("%s is out of range", c.SessionExpiry), "use 0 (sessions end with the connection) up to 136 years, e.g. 24h")
	es.Check(c.PendingBytes >= minPendingBytes, "pending_bytes", fmt.Sprintf("%s is below %s", c.PendingBytes, config.Bytes(minPendingBytes)),
		"use at least 64KiB (default 16MiB): the memory of the messages the broker may hold at once")
	es.Check(c.AppendTimeout > 0, "append_timeout", fmt.Sprintf("%s is not positive", c.AppendTimeout), "use a duration such as 10s")
	es.Check(c.MaxClients >= 0, "max_clients", fmt.Sprintf("%d is negative", c.MaxClients), "use 0 for no limit, or a positive number")
	return es
}

func checkAddr(es *config.Errors, key, addr, example string) {
	if addr == "" {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = fmt.Errorf("port %d out of range", n)
		}
	}
	if err != nil {
		es.Add(key, fmt.Sprintf("%q is not host:port", addr), fmt.Sprintf("write it as %s (port 0 picks a free port), or \"\" to disable", example))
	}
}
