package httpapi

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-project/sluice/internal/config"
)

// Config is the HTTP listener's configuration.
type Config struct {
	Listen   string `yaml:"listen" doc:"Address of the HTTP listener (health, readiness, metrics, SQL API). \"\" disables it."`
	TLSCert  string `yaml:"tls_cert" doc:"PEM certificate file; with tls_key, serve HTTPS instead of HTTP."`
	TLSKey   string `yaml:"tls_key" doc:"PEM private key file for tls_cert."`
	Token    string `yaml:"token" doc:"When set, every route but /healthz and /readyz requires \"Authorization: Bearer <token>\"." secret:"true"`
	Username string `yaml:"username" doc:"When set (with password), every route but /healthz and /readyz requires HTTP basic auth."`
	Password string `yaml:"password" doc:"Password for username." secret:"true"`
	PProf    bool   `yaml:"pprof" doc:"Serve Go's profiler (net/http/pprof) under /debug/pprof/, behind the same authentication as /metrics: heap and CPU profiles for finding where memory and time go. Off by default."`
}

// DefaultConfig returns the defaults: plain HTTP on 127.0.0.1:8080, no auth (loopback only).
func DefaultConfig() Config { return Config{Listen: "127.0.0.1:8080"} }

// Validate implements config.Validator.
func (c Config) Validate() config.Errors {
	var es config.Errors
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			es.Add("listen", fmt.Sprintf("%q is not host:port", c.Listen), "write it as 127.0.0.1:8080, or \"\" to disable")
		}
	}
	es.Check((c.TLSCert == "") == (c.TLSKey == ""), "tls_cert", "tls_cert and tls_key must be set together", "set both files, or neither")
	es.Check((c.Username == "") == (c.Password == ""), "username", "username and password must be set together", "set both (or use token)")
	return es
}

// Check is one readiness check: nil when ready, else why not.
type Check func(ctx context.Context) error

// Server is the HTTP listener.
type Server struct {
	cfg    Config
	logger *slog.Logger
	mux    *http.ServeMux
	srv    *http.Server
	ln     net.Listener

	mu     sync.Mutex
	checks map[string]Check
	done   chan error
}

// New returns a server with /healthz, /readyz and /metrics (from gatherer) mounted.
func New(cfg Config, gatherer prometheus.Gatherer, logger *slog.Logger) *Server {
	s := &Server{cfg: cfg, logger: logger, mux: http.NewServeMux(), checks: map[string]Check{}}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	if cfg.PProf {
		s.mux.Handle("GET /debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
		s.mux.Handle("GET /debug/pprof/cmdline", s.auth(http.HandlerFunc(pprof.Cmdline)))
		s.mux.Handle("GET /debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
		s.mux.Handle("GET /debug/pprof/symbol", s.auth(http.HandlerFunc(pprof.Symbol)))
		s.mux.Handle("GET /debug/pprof/trace", s.auth(http.HandlerFunc(pprof.Trace)))
	}
	return s
}

// AddCheck registers a named readiness check.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Handle mounts h at pattern (http.ServeMux syntax) behind the configured authentication.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, s.auth(h)) }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := s.checks
	s.mu.Unlock()
	slices.Sort(names)
	status := map[string]string{}
	ok := true
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			status[n], ok = err.Error(), false
		} else {
			status[n] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "checks": status})
}

func (s *Server) auth(h http.Handler) http.Handler {
	if s.cfg.Token == "" && s.cfg.Username == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1 {
				h.ServeHTTP(w, r)
				return
			}
		}
		if s.cfg.Username != "" {
			u, p, ok := r.BasicAuth()
			if ok && subtle.ConstantTimeCompare([]byte(u), []byte(s.cfg.Username)) == 1 &&
				subtle.ConstantTimeCompare([]byte(p), []byte(s.cfg.Password)) == 1 {
				h.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="sluice"`)
		}
		http.Error(w, "unauthorized: send the configured bearer token or basic-auth credentials", http.StatusUnauthorized)
	})
}

// Start listens and serves in the background. A taken port is reported with the fix.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		if errors.Is(err, errAddrInUse) || strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("http listen %s: the port is taken by another process; choose another with --http 127.0.0.1:8081 (or http.listen in the config): %w", s.cfg.Listen, err)
		}
		return fmt.Errorf("http listen %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http tls: load %s and %s: %w", s.cfg.TLSCert, s.cfg.TLSKey, err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)}
	s.done = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return nil
}

// Addr returns the listening address (after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, lets in-flight requests finish until ctx is done, and waits for the server.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	return err
}
