package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/internal/simulate"
	"github.com/sluice-project/sluice/internal/testkit"
)

// env is what every measurement shares: where to work, the sluice binary, how to report progress.
type env struct {
	root  string // repository root
	work  string // scratch directory of this run
	bin   string // the sluice binary
	say   func(format string, args ...any)
	seq   atomic.Int64 // numbers scratch directories and client ids
	quick bool
}

// dir returns a fresh scratch directory named after what.
func (e *env) dir(what string) (string, error) {
	d := filepath.Join(e.work, fmt.Sprintf("%03d-%s", e.seq.Add(1), what))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("scratch dir: %w", err)
	}
	return d, nil
}

// benchTopic is the topic template of every message the benchmarks publish; benchFilter matches it.
const (
	benchTopic  = "sluice-bench/{sensor}"
	benchFilter = "sluice-bench/#"
)

// publisher returns the simulator's configuration for an unpaced load of n messages at qos.
func publisher(brokerURL string, qos, conns, fleet int, n, seed int64) simulate.Config {
	c := simulate.DefaultConfig()
	c.Broker, c.QoS, c.Connections, c.Fleet, c.Count, c.Seed = brokerURL, qos, conns, fleet, n, seed
	c.Rate = 1e7 // the simulator's unpaced mode: as fast as the broker acknowledges
	c.Topic = benchTopic
	c.ClientID = "bench-pub"
	c.DrainTimeout = time.Minute
	return c
}

// startSluice starts the binary in a fresh data directory with the settings given (SLUICE_* and
// flags) and waits until /readyz answers 200.
func (e *env) startSluice(what string, settings []string, args ...string) (*harness.Proc, string, error) {
	dir, err := e.dir(what)
	if err != nil {
		return nil, "", err
	}
	p, err := harness.Start(harness.Options{
		Bin: e.bin, DataDir: filepath.Join(dir, "data"), Args: args, Env: settings,
		LogFile: filepath.Join(dir, "sluice.log"),
	})
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitReady(30 * time.Second); err != nil {
		p.Kill()
		return nil, "", fmt.Errorf("%w:\n%s", err, p.Logs())
	}
	return p, filepath.Join(dir, "data", "lake"), nil
}

// subscriber is a plain paho.mqtt.golang subscriber that counts what it receives: the ceiling.
type subscriber struct {
	c paho.Client
	n atomic.Int64
}

// subscribe connects a clean session to brokerURL and subscribes to filter at qos; every message
// is counted and acknowledged on receipt (paho's automatic acknowledgement).
func subscribe(brokerURL, clientID, filter string, qos byte) (*subscriber, error) {
	s := &subscriber{}
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetKeepAlive(60 * time.Second).
		SetCustomOpenConnectionFn(dialBufferedRead).
		SetDefaultPublishHandler(func(paho.Client, paho.Message) { s.n.Add(1) })
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscriber: connect %s: %v", brokerURL, tok.Error())
	}
	if tok := s.c.Subscribe(filter, qos, nil); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		s.c.Disconnect(0)
		return nil, fmt.Errorf("subscriber: subscribe %s: %v", filter, tok.Error())
	}
	return s, nil
}

func (s *subscriber) close() { s.c.Disconnect(100) }

// dialBufferedRead gives paho a TCP connection whose reads go through a 64 KiB buffer.
func dialBufferedRead(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", uri.Host, opts.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	return &bufReadConn{Conn: nc, r: bufio.NewReaderSize(nc, 64<<10)}, nil
}

type bufReadConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufReadConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// broker is a broker to measure against: a private Mosquitto or a bare mochi in a child process.
type broker struct {
	url  string
	stop func()
	cpu  func() time.Duration // valid after stop
}

func (e *env) startBroker(kind string) (*broker, error) {
	switch kind {
	case "mosquitto":
		dir, err := e.dir("mosquitto")
		if err != nil {
			return nil, err
		}
		m, err := testkit.RunMosquitto(dir, mosquittoConf...)
		if err != nil {
			return nil, err
		}
		return &broker{url: m.URL, stop: m.Stop, cpu: m.CPU}, nil
	case "embedded":
		m, err := harness.StartMochi()
		if err != nil {
			return nil, err
		}
		return &broker{url: m.URL, stop: m.Stop, cpu: m.CPU}, nil
	}
	return nil, fmt.Errorf("unknown broker %q", kind)
}

// mosquittoConf is what the private Mosquitto is told besides its listener and persistence: let a
// subscriber have 1,000 QoS 1 messages in flight (sluice's mqtt.max_inflight; Mosquitto's default of
// 20 would cap sluice at 20 messages per group commit) and queue up to a million (default 1,000).
var mosquittoConf = []string{"max_inflight_messages 1000", "max_queued_messages 1000000"}

// mosquittoVersion returns "mosquitto version X" or "".
func mosquittoVersion() string {
	bin := testkit.MosquittoPath()
	if bin == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// moduleVersions returns "path version" of the named modules this binary was built with.
func moduleVersions(paths ...string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var out []string
	for _, p := range paths {
		for _, d := range bi.Deps {
			if d.Path == p {
				out = append(out, d.Path+" "+d.Version)
			}
		}
	}
	return strings.Join(out, ", ")
}
