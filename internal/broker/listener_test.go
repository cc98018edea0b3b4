package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// TestAddrInUseMessage pins the text users see for a taken port: both fixes, verbatim.
func TestAddrInUseMessage(t *testing.T) {
	cases := []struct {
		key, addr, want string
	}{
		{"listen", "127.0.0.1:1883", "embedded MQTT broker: 127.0.0.1:1883 is already in use (another broker, e.g. Mosquitto, may be running there). " +
			"Use it instead with --broker mqtt://127.0.0.1:1883, or move the embedded broker with --mqtt-listen 127.0.0.1:1884"},
		{"listen", "0.0.0.0:1883", "embedded MQTT broker: 0.0.0.0:1883 is already in use (another broker, e.g. Mosquitto, may be running there). " +
			"Use it instead with --broker mqtt://127.0.0.1:1883, or move the embedded broker with --mqtt-listen 127.0.0.1:1884"},
		{"listen", ":1883", "embedded MQTT broker: :1883 is already in use (another broker, e.g. Mosquitto, may be running there). " +
			"Use it instead with --broker mqtt://127.0.0.1:1883, or move the embedded broker with --mqtt-listen 127.0.0.1:1884"},
		{"listen", "[::1]:65535", "embedded MQTT broker: [::1]:65535 is already in use (another broker, e.g. Mosquitto, may be running there). " +
			"Use it instead with --broker mqtt://[::1]:65535, or move the embedded broker with --mqtt-listen [::1]:65534"},
		{"tls.listen", "0.0.0.0:8883", "embedded MQTT broker: TLS address 0.0.0.0:8883 is already in use. Move it with broker.tls.listen " +
			"(env SLUICE_BROKER_TLS_LISTEN), e.g. 127.0.0.1:8884, or set it to \"\" to disable TLS"},
		{"websocket_listen", "127.0.0.1:8083", "embedded MQTT broker: websocket address 127.0.0.1:8083 is already in use. Move it with " +
			"broker.websocket_listen (env SLUICE_BROKER_WEBSOCKET_LISTEN), e.g. 127.0.0.1:8084, or set it to \"\" to disable websockets"},
	}
	for _, c := range cases {
		t.Run(c.key+" "+c.addr, func(t *testing.T) {
			if got := (&AddrInUseError{Key: c.key, Addr: c.addr}).Error(); got != c.want {
				t.Fatalf("message:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestTakenPort starts brokers on taken addresses: Start fails with AddrInUseError naming the fixes,
// and releases whatever it had bound.
func TestTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	free := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	cases := []struct {
		name     string
		cfg      func(*Config)
		key      string
		contains []string
		freed    string // an address Start bound before failing, which must be free again
	}{
		{"tcp", func(c *Config) { c.Listen = addr }, "listen",
			[]string{addr + " is already in use", "--broker mqtt://" + addr, fmt.Sprintf("--mqtt-listen 127.0.0.1:%d", p+1)}, ""},
		{"websocket after tcp", func(c *Config) { c.Listen = free; c.WebsocketListen = addr }, "websocket_listen",
			[]string{"websocket address " + addr + " is already in use", "broker.websocket_listen"}, free},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.cfg(&cfg)
			b, err := New(cfg, memlog.New(), testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = b.Start()
			var inUse *AddrInUseError
			if !errors.As(err, &inUse) || inUse.Key != c.key || !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("Start = %v, want *AddrInUseError for %s wrapping EADDRINUSE", err, c.key)
			}
			for _, s := range c.contains {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q lacks %q", err, s)
				}
			}
			if b.Ready() == nil || b.Addr() != nil || b.WebsocketAddr() != nil {
				t.Fatalf("after a failed Start: Ready %v, Addr %v, WebsocketAddr %v", b.Ready(), b.Addr(), b.WebsocketAddr())
			}
			if c.freed != "" {
				ln, err := net.Listen("tcp", c.freed)
				if err != nil {
					t.Fatalf("%s still bound after the failed Start: %v", c.freed, err)
				}
				ln.Close()
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTLS publishes over TLS, and with mutual TLS checks that only clients with a certificate from the
// configured CA get in.
func TestTLS(t *testing.T) {
	pki := testkit.NewPKI(t)
	cases := []struct {
		name     string
		mutual   bool
		cert     *tls.Certificate // client certificate, or nil
		wantConn bool
	}{
		{"server auth", false, nil, true},
		{"mutual, trusted client", true, &pki.Client, true},
		{"mutual, no client certificate", true, nil, false},
		{"mutual, client from another CA", true, &pki.Untrusted, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Listen = ""
			cfg.TLS = TLSConfig{Listen: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile}
			if c.mutual {
				cfg.TLS.ClientCAFile = pki.CAFile
			}
			l := memlog.New()
			b, _ := startBroker(t, cfg, l)
			if b.Addr() != nil {
				t.Fatalf("plain listener at %v although disabled", b.Addr())
			}
			tc := &tls.Config{RootCAs: pki.Pool, ServerName: "127.0.0.1"}
			if c.cert != nil {
				tc.Certificates = []tls.Certificate{*c.cert}
			}
			opts := mqtt3.NewClientOptions().AddBroker("ssl://" + b.TLSAddr().String()).SetClientID("tls-" + strconv.Itoa(len(c.name))).
				SetTLSConfig(tc).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
			cl := mqtt3.NewClient(opts)
			tok := cl.Connect()
			ok := tok.WaitTimeout(10*time.Second) && tok.Error() == nil
			if ok != c.wantConn {
				t.Fatalf("connected = %v (err %v), want %v", ok, tok.Error(), c.wantConn)
			}
			if !ok {
				if n := l.Next(); n != 0 {
					t.Fatalf("log holds %d entries", n)
				}
				return
			}
			defer cl.Disconnect(50)
			if tok := cl.Publish("plant/tls", 1, false, []byte("secret")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			if got := readLog(t, l, 1); string(got[0].Payload) != "secret" || got[0].Topic != "plant/tls" {
				t.Fatalf("envelope %+v", got[0])
			}
		})
	}
}

// TestTLSConfigErrors: unreadable or wrong TLS files fail New with the key named.
func TestTLSConfigErrors(t *testing.T) {
	pki := testkit.NewPKI(t)
	cases := []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"missing cert", TLSConfig{Listen: "127.0.0.1:0", CertFile: pki.Dir + "/nope.pem", KeyFile: pki.ServerKeyFile}, "broker.tls.cert_file"},
		{"key is not a key", TLSConfig{Listen: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.CAFile}, "broker.tls.cert_file and key_file"},
		{"missing CA", TLSConfig{Listen: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.Dir + "/nope.pem"}, "broker.tls.client_ca_file"},
		{"CA without PEM", TLSConfig{Listen: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.ServerKeyFile}, "holds no PEM certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TLS = c.tls
			_, err := New(cfg, memlog.New(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v, want an error naming %q", err, c.want)
			}
		})
	}
}

// TestWebsocket publishes over MQTT-over-websockets (3.1.1 client) and subscribes over it too.
func TestWebsocket(t *testing.T) {
	cfg := testConfig()
	cfg.WebsocketListen = "127.0.0.1:0"
	l := memlog.New()
	b, _ := startBroker(t, cfg, l)
	url := "ws://" + b.WebsocketAddr().String() + "/mqtt"
	got := make(chan string, 10)
	sub := connect3(t, url, mqtt3.NewClientOptions().SetClientID("ws-sub"))
	if tok := sub.Subscribe("plant/#", 1, func(_ mqtt3.Client, m mqtt3.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub := connect3(t, url, mqtt3.NewClientOptions().SetClientID("ws-pub"))
	big := strings.Repeat("x", 100<<10) // spans several websocket reads
	for _, p := range []string{"over websockets", big} {
		if tok := pub.Publish("plant/ws", 1, false, []byte(p)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	env := readLog(t, l, 2)
	if string(env[0].Payload) != "over websockets" || string(env[1].Payload) != big {
		t.Fatalf("payloads %q, %d bytes", env[0].Payload, len(env[1].Payload))
	}
	for _, want := range []string{"over websockets", big} {
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("subscriber got %d bytes, want %d", len(m), len(want))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("websocket subscriber got nothing")
		}
	}
}

// TestAuth: with a username and password configured, only clients presenting both get in (3.1.1 and 5).
func TestAuth(t *testing.T) {
	cfg := testConfig()
	cfg.Username, cfg.Password = "sensor", "s3cret"
	l := memlog.New()
	b, _ := startBroker(t, cfg, l)
	addr := b.Addr().String()
	cases := []struct {
		name       string
		user, pass string
		ok         bool
	}{
		{"right", "sensor", "s3cret", true},
		{"wrong password", "sensor", "s3cret!", false},
		{"empty password", "sensor", "", false},
		{"wrong user", "sensorx", "s3cret", false},
		{"anonymous", "", "", false},
	}
	for _, c := range cases {
		t.Run("3.1.1 "+c.name, func(t *testing.T) {
			opts := mqtt3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("auth3").SetUsername(c.user).SetPassword(c.pass).SetAutoReconnect(false)
			cl := mqtt3.NewClient(opts)
			tok := cl.Connect()
			ok := tok.WaitTimeout(10*time.Second) && tok.Error() == nil
			if ok {
				cl.Disconnect(50)
			}
			if ok != c.ok {
				t.Fatalf("connected = %v (err %v), want %v", ok, tok.Error(), c.ok)
			}
			// mochi answers 3.1.1 clients with return code 5, not authorized (its v5 0x86 mapped down).
			if !c.ok && tok.Error().Error() != "not Authorized" {
				t.Fatalf("error %v, want not Authorized", tok.Error())
			}
		})
		t.Run("5 "+c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			cl := paho.NewClient(paho.ClientConfig{Conn: conn})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ca, err := cl.Connect(ctx, &paho.Connect{ClientID: "auth5", CleanStart: true, Username: c.user, UsernameFlag: c.user != "", Password: []byte(c.pass), PasswordFlag: c.pass != ""})
			if err == nil {
				_ = cl.Disconnect(&paho.Disconnect{})
				waitDone(t, cl)
			}
			if (err == nil) != c.ok {
				t.Fatalf("connect err %v, want ok=%v", err, c.ok)
			}
			if !c.ok && (ca == nil || ca.ReasonCode != 0x86) {
				t.Fatalf("connack %+v, want reason 0x86 (bad user name or password)", ca)
			}
		})
	}
}

// TestCloseWithSilentConnections: connections that never finish their handshake do not hold Close.
func TestCloseWithSilentConnections(t *testing.T) {
	pki := testkit.NewPKI(t)
	cfg := testConfig()
	cfg.WebsocketListen = "127.0.0.1:0"
	cfg.TLS = TLSConfig{Listen: "127.0.0.1:0", CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile}
	b, err := New(cfg, memlog.New(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []net.Addr{b.Addr(), b.TLSAddr(), b.WebsocketAddr()} {
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		n := 0
		for _, ln := range b.lns {
			n += ln.open()
		}
		return n == 3
	}, "the listeners did not accept the 3 connections")
	done := make(chan struct{})
	go func() { _ = b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked on connections that never sent CONNECT")
	}
}
