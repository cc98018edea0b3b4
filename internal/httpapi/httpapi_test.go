package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_things_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, reg, slog.New(slog.DiscardHandler))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, "http://" + s.Addr().String()
}

func get(t *testing.T, url string, mod func(*http.Request)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutes(t *testing.T) {
	s, base := start(t, Config{})
	if code, body := get(t, base+"/healthz", nil); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz", nil); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz with no checks = %d %q", code, body)
	}
	failing := errors.New("wal not open")
	s.AddCheck("wal", func(context.Context) error { return failing })
	s.AddCheck("broker", func(context.Context) error { return nil })
	if code, body := get(t, base+"/readyz", nil); code != 503 || !strings.Contains(body, `"wal":"wal not open"`) || !strings.Contains(body, `"broker":"ok"`) {
		t.Fatalf("/readyz with a failing check = %d %q", code, body)
	}
	failing = nil
	s.AddCheck("wal", func(context.Context) error { return nil })
	if code, _ := get(t, base+"/readyz", nil); code != 200 {
		t.Fatalf("/readyz after recovery = %d", code)
	}
	if code, body := get(t, base+"/metrics", nil); code != 200 || !strings.Contains(body, "sluice_test_things_total 3") {
		t.Fatalf("/metrics = %d %q", code, body)
	}
}

func TestAuth(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		mod  func(*http.Request)
		want int
	}{
		{"token missing", Config{Token: "s3cret"}, nil, 401},
		{"token wrong", Config{Token: "s3cret"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"token right", Config{Token: "s3cret"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, 200},
		{"basic missing", Config{Username: "bi", Password: "pw"}, nil, 401},
		{"basic wrong", Config{Username: "bi", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("bi", "x") }, 401},
		{"basic right", Config{Username: "bi", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("bi", "pw") }, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, base := start(t, c.cfg)
			if code, _ := get(t, base+"/metrics", c.mod); code != c.want {
				t.Fatalf("/metrics = %d, want %d", code, c.want)
			}
			if code, _ := get(t, base+"/healthz", nil); code != 200 {
				t.Fatalf("/healthz must not need credentials, got %d", code)
			}
		})
	}
}

func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := New(Config{Listen: ln.Addr().String()}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), "the port is taken") || !strings.Contains(err.Error(), "--http 127.0.0.1:8081") {
		t.Fatalf("Start on a taken port = %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]struct {
		cfg  Config
		keys []string
	}{
		"defaults":   {DefaultConfig(), nil},
		"bad listen": {Config{Listen: "8080"}, []string{"listen"}},
		"half tls":   {Config{Listen: "127.0.0.1:1", TLSCert: "c.pem"}, []string{"tls_cert"}},
		"half basic": {Config{Username: "u"}, []string{"username"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			es := c.cfg.Validate()
			if len(es) != len(c.keys) {
				t.Fatalf("got %v, want keys %v", es, c.keys)
			}
			for i, k := range c.keys {
				if es[i].Key != k {
					t.Fatalf("error %d key %q, want %q", i, es[i].Key, k)
				}
			}
		})
	}
}

// TestPProf: the profiler is mounted only when asked for, and behind the configured authentication.
func TestPProf(t *testing.T) {
	auth := func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }
	cases := []struct {
		name string
		cfg  Config
		mod  func(*http.Request)
		want int
	}{
		{"off by default", Config{}, nil, 404},
		{"on", Config{PProf: true}, nil, 200},
		{"on, token missing", Config{PProf: true, Token: "s3cret"}, nil, 401},
		{"on, token right", Config{PProf: true, Token: "s3cret"}, auth, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, base := start(t, c.cfg)
			code, body := get(t, base+"/debug/pprof/heap?debug=1", c.mod)
			if code != c.want {
				t.Fatalf("/debug/pprof/heap = %d, want %d", code, c.want)
			}
			if code == 200 && !strings.Contains(body, "heap profile:") {
				t.Fatalf("/debug/pprof/heap body does not start a heap profile: %.80q", body)
			}
		})
	}
}
