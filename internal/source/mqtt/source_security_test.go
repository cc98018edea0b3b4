package mqtt

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// ingestOK starts a source with cfg, publishes n messages through pubURL and checks that exactly those
// land in the log.
func ingestOK(t *testing.T, cfg Config, pubURL string, pubTLS *tls.Config, user, pass string) {
	t.Helper()
	const n = 50
	l := memlog.New()
	r := startSource(t, cfg, l)
	r.waitReady(t)
	ms := messages(cfg.ClientID, n)
	newPublisher(t, pubURL, "pub-"+cfg.ClientID, pubTLS, user, pass).publish(t, 1, ms)
	testkit.Eventually(t, 10*time.Second, func() bool { return l.Next() >= n }, "log holds %d of %d", l.Next(), n)
	envs := envelopes(t, l)
	if len(envs) != n {
		t.Fatalf("log holds %d messages, want %d", len(envs), n)
	}
	for i, e := range envs {
		if e.Topic != ms[i].topic || string(e.Payload) != ms[i].payload {
			t.Fatalf("message %d: %q %q, want %q %q", i, e.Topic, e.Payload, ms[i].topic, ms[i].payload)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return r.acked() == n }, "acked %d of %d", r.acked(), n)
}

// refused starts a source with cfg and checks that it keeps failing to connect, with an error that
// contains one of want.
func refused(t *testing.T, cfg Config, want ...string) {
	t.Helper()
	r := startSource(t, cfg, memlog.New())
	testkit.Eventually(t, 10*time.Second, func() bool {
		err := r.Ready()
		if err == nil || int(testutil.ToFloat64(r.m.connectErrors)) < 2 {
			return false
		}
		for _, w := range want {
			if strings.Contains(err.Error(), w) {
				return true
			}
		}
		return false
	}, "Ready = %v, want repeated failures mentioning one of %q", r.Ready(), want)
	if r.received() != 0 {
		t.Fatalf("a refused source received %d messages", r.received())
	}
}

// TestTLS connects with mutual TLS (a CA, a client certificate the broker requires) to mochi and
// Mosquitto, under each TLS scheme, and checks that a client without a certificate, or trusting another
// CA, is refused.
func TestTLS(t *testing.T) {
	c := testkit.NewPKI(t)
	pubTLS := &tls.Config{RootCAs: c.Pool, Certificates: []tls.Certificate{c.Client}}
	type broker struct {
		tlsURL func(scheme string) string // the TLS listener
		pubURL string                     // where the publisher publishes
		pubTLS *tls.Config
	}
	starts := []struct {
		name  string
		start func(t *testing.T) broker
	}{
		{"mochi", func(t *testing.T) broker {
			b := startMochi(t, mochiOptions{tls: serverTLS(c)})
			return broker{func(s string) string { return s + "://" + b.addr }, "ssl://" + b.addr, pubTLS}
		}},
		{"mosquitto", func(t *testing.T) broker {
			port := testkit.FreePort(t)
			m := startMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1", port), "cafile "+c.CAFile, "certfile "+c.ServerCertFile,
				"keyfile "+c.ServerKeyFile, "require_certificate true")
			testkit.WaitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			return broker{func(s string) string { return fmt.Sprintf("%s://127.0.0.1:%d", s, port) }, m.URL, nil}
		}},
	}
	for _, st := range starts {
		for _, proto := range protocols {
			t.Run(st.name+"/v"+proto, func(t *testing.T) {
				b := st.start(t)
				good := TLSConfig{CAFile: c.CAFile, CertFile: c.ClientCertFile, KeyFile: c.ClientKeyFile}
				for _, scheme := range []string{"mqtts", "ssl", "tls"} {
					t.Run(scheme, func(t *testing.T) {
						cfg := testConfig(b.tlsURL(scheme), "sluice-tls-"+scheme, proto)
						cfg.TLS = good
						ingestOK(t, cfg, b.pubURL, b.pubTLS, "", "")
					})
				}
				t.Run("server name from config", func(t *testing.T) {
					cfg := testConfig(b.tlsURL("mqtts"), "sluice-tls-sn", proto)
					cfg.TLS = good
					cfg.TLS.ServerName = "localhost"
					ingestOK(t, cfg, b.pubURL, b.pubTLS, "", "")
				})
				t.Run("no client certificate", func(t *testing.T) {
					cfg := testConfig(b.tlsURL("mqtts"), "sluice-tls-nocert", proto)
					cfg.TLS = TLSConfig{CAFile: c.CAFile}
					refused(t, cfg, "certificate required", "connection reset by peer", "broken pipe", "EOF")
				})
				t.Run("other CA", func(t *testing.T) {
					other := testkit.NewPKI(t)
					cfg := testConfig(b.tlsURL("mqtts"), "sluice-tls-otherca", proto)
					cfg.TLS = TLSConfig{CAFile: other.CAFile, CertFile: c.ClientCertFile, KeyFile: c.ClientKeyFile}
					refused(t, cfg, "certificate signed by unknown authority")
				})
			})
		}
	}
}

// TestUsernamePassword connects with a user name and password, and checks that a wrong password is
// refused (and retried).
func TestUsernamePassword(t *testing.T) {
	users := map[string]string{"sluice": "s3cret", "pub": "pubpw"}
	starts := []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"mochi", func(t *testing.T) string { return startMochi(t, mochiOptions{users: users}).url() }},
		{"mosquitto", func(t *testing.T) string {
			bin, err := exec.LookPath("mosquitto_passwd")
			if err != nil {
				t.Skip("mosquitto_passwd is not installed")
			}
			pw := filepath.Join(t.TempDir(), "passwd")
			for u, p := range users {
				args := []string{"-b", pw, u, p}
				if _, err := os.Stat(pw); err != nil {
					args = []string{"-b", "-c", pw, u, p}
				}
				if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
					t.Fatalf("mosquitto_passwd: %v: %s", err, out)
				}
			}
			if os.Geteuid() == 0 {
				_ = os.Chmod(pw, 0o600)
			}
			return startMosquitto(t, "allow_anonymous false", "password_file "+pw).URL
		}},
	}
	for _, st := range starts {
		for _, proto := range protocols {
			t.Run(st.name+"/v"+proto, func(t *testing.T) {
				url := st.start(t)
				t.Run("right password", func(t *testing.T) {
					cfg := testConfig(url, "sluice-auth", proto)
					cfg.Username, cfg.Password = "sluice", "s3cret"
					ingestOK(t, cfg, url, nil, "pub", "pubpw")
				})
				t.Run("wrong password", func(t *testing.T) {
					cfg := testConfig(url, "sluice-auth-bad", proto)
					cfg.Username, cfg.Password = "sluice", "wrong"
					refused(t, cfg, "broker refused the connection: return code 5 (not authorized)", "broker refused the connection: return code 4 (bad user name or password)",
						"broker refused the connection: reason code 0x86 (bad user name or password)", "broker refused the connection: reason code 0x87 (not authorized)")
				})
				t.Run("anonymous", func(t *testing.T) {
					refused(t, testConfig(url, "sluice-auth-anon", proto), "broker refused the connection: return code 5 (not authorized)",
						"broker refused the connection: reason code 0x86 (bad user name or password)", "broker refused the connection: reason code 0x87 (not authorized)")
				})
			})
		}
	}
}

// TestWebsockets connects over ws:// and wss:// to mochi's websocket listener, and over ws:// to
// Mosquitto's when this Mosquitto build can open one.
func TestWebsockets(t *testing.T) {
	c := testkit.NewPKI(t)
	for _, proto := range protocols {
		t.Run("mochi/ws/v"+proto, func(t *testing.T) {
			ws := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
			b := startMochi(t, mochiOptions{wsAddr: ws})
			ingestOK(t, testConfig("ws://"+ws+"/mqtt", "sluice-ws", proto), b.url(), nil, "", "")
		})
		t.Run("mochi/wss/v"+proto, func(t *testing.T) {
			ws := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
			srvTLS := serverTLS(c)
			srvTLS.ClientAuth = tls.NoClientCert
			b := startMochi(t, mochiOptions{wsAddr: ws, wsTLS: true, tls: srvTLS})
			cfg := testConfig("wss://"+ws+"/", "sluice-wss", proto)
			cfg.TLS.CAFile = c.CAFile
			ingestOK(t, cfg, "ssl://"+b.addr, &tls.Config{RootCAs: c.Pool}, "", "")
		})
		t.Run("mosquitto/ws/v"+proto, func(t *testing.T) {
			port := testkit.FreePort(t)
			if !mosquittoWebsockets(t, port) {
				t.Skip("this Mosquitto cannot open a websockets listener here (\"Unable to start any listening sockets\"); mochi covers ws:// and wss://")
			}
			m := startMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1", port), "protocol websockets")
			ingestOK(t, testConfig(fmt.Sprintf("ws://127.0.0.1:%d/", port), "sluice-ws", proto), m.URL, nil, "", "")
		})
	}
}

// mosquittoWebsockets reports whether Mosquitto can listen for websockets on port here (some builds,
// or libwebsockets in some sandboxes, cannot).
func mosquittoWebsockets(t *testing.T, port int) bool {
	bin := testkit.MosquittoPath()
	if bin == "" {
		return false
	}
	conf := filepath.Join(t.TempDir(), "ws.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\n", port), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		return false
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
