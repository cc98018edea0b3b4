package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/bench/internal/lakecheck"
	"github.com/sluice-project/sluice/internal/simulate"
	"github.com/sluice-project/sluice/internal/testkit"
)

// env is what every scenario shares.
type env struct {
	bin   string // the sluice binary
	work  string // scratch directory of this run
	quick bool
	say   func(format string, args ...any)
}

// rig is one sluice data directory and how sluice is started on it, again and again.
type rig struct {
	e        *env
	dir      string   // the scenario's scratch directory
	data     string   // sluice's data directory
	settings []string // SLUICE_* environment
	args     []string // --broker URL, or --mqtt-listen on a fixed port
	broker   string   // URL publishers use
	proc     *harness.Proc
	starts   int
}

// newRig prepares a scenario directory. With brokerURL "" sluice runs its embedded broker on a fixed
// free port (so that restarts keep the address publishers reconnect to).
func newRig(e *env, name, brokerURL string, settings ...string) (*rig, error) {
	dir := filepath.Join(e.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scenario dir: %w", err)
	}
	r := &rig{e: e, dir: dir, data: filepath.Join(dir, "data"), settings: settings}
	if brokerURL == "" {
		port, err := testkit.PickPort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		r.args, r.broker = []string{"--mqtt-listen", addr}, "mqtt://"+addr
	} else {
		r.args, r.broker = []string{"--broker", brokerURL}, brokerURL
		r.settings = append(r.settings, "SLUICE_MQTT_CLIENT_ID=chaos-sluice-"+name)
	}
	return r, nil
}

func (r *rig) lake() string { return filepath.Join(r.data, "lake") }

// start starts sluice and waits until it is ready (subscribed, with an external broker).
func (r *rig) start() error {
	r.starts++
	p, err := harness.Start(harness.Options{
		Bin: r.e.bin, DataDir: r.data, Args: r.args, Env: r.settings,
		LogFile: filepath.Join(r.dir, "sluice.log"), ReadyTimeout: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("start %d: %w", r.starts, err)
	}
	r.proc = p
	if err := p.WaitReady(time.Minute); err != nil {
		return fmt.Errorf("start %d: %w", r.starts, err)
	}
	return nil
}

// stop stops sluice with SIGTERM: it stops ingesting and commits everything its log holds.
func (r *rig) stop() error {
	if r.proc == nil {
		return nil
	}
	err := r.proc.Stop(2 * time.Minute)
	r.proc = nil
	return err
}

// kill kills sluice with SIGKILL.
func (r *rig) kill() {
	if r.proc != nil {
		r.proc.Kill()
		r.proc = nil
	}
}

// metrics scrapes the running sluice (empty when it is not running or does not answer).
func (r *rig) metrics() harness.Metrics {
	if r.proc == nil {
		return harness.Metrics{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := r.proc.Metrics(ctx)
	if err != nil {
		return harness.Metrics{}
	}
	return m
}

// logs returns every log line written by every sluice started on this rig.
func (r *rig) logs() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "sluice.log"))
	return string(b)
}

// load is a simulator run in the background.
type load struct {
	cfg   simulate.Config
	done  chan struct{}
	stats simulate.Stats
	err   error
}

// chaosLoad is the simulator's configuration for a scenario: QoS 1, paced at rate, n messages (or
// for the duration given), fleet sensors in the nested shape, every acknowledged message in a truth
// file.
func (r *rig) chaosLoad(rate float64, n int64, duration time.Duration, conns, fleet int) simulate.Config {
	c := simulate.DefaultConfig()
	c.Broker, c.QoS, c.Rate, c.Count, c.Duration = r.broker, 1, rate, n, duration
	c.Connections, c.Fleet, c.Seed = conns, fleet, time.Now().UnixNano()
	c.Truth = filepath.Join(r.dir, "truth.ndjson")
	c.ClientID = "chaos-pub"
	c.DrainTimeout = 3 * time.Minute
	// Devices keep few messages in flight; with the default 1,000 per connection an outage piles up
	// thousands that all land at once when sluice is back, and a short scenario is over in one burst.
	c.Inflight = 50
	return c
}

// startRig starts sluice on a new rig (brokerURL "": its embedded broker), committing every 250ms,
// and the scenario's QoS 1 load against it. The caller kills the rig.
func startRig(ctx context.Context, e *env, name, brokerURL string, sz size) (*rig, *load, error) {
	r, err := newRig(e, name, brokerURL, "SLUICE_LAKE_FLUSH_INTERVAL=250ms")
	if err != nil {
		return nil, nil, err
	}
	if err := r.start(); err != nil {
		return nil, nil, err
	}
	return r, startLoad(ctx, r.chaosLoad(sz.rate, sz.n, 0, sz.conns, sz.fleet)), nil
}

func startLoad(ctx context.Context, cfg simulate.Config) *load {
	l := &load{cfg: cfg, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.stats, l.err = simulate.Run(ctx, cfg, nil)
	}()
	return l
}

func (l *load) running() bool {
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

func (l *load) wait() (simulate.Stats, error) {
	<-l.done
	return l.stats, l.err
}

// sentinelID is the sensor of the message published last through an external broker.
const sentinelID = "chaos-sentinel"

// publishSentinel publishes one QoS 1 message of sentinelID through brokerURL and waits for its
// PUBACK. The broker's queue for sluice's session is first in, first out: once the sentinel is in
// readings/, so is everything acknowledged before it.
func publishSentinel(brokerURL string) error {
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("chaos-sentinel-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("sentinel: connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	payload := fmt.Sprintf(`{"sensor_id":%q,"timestamp":%q,"value":1}`, sentinelID, time.Now().UTC().Format("2006-01-02T15:04:05.000000"))
	if tok := c.Publish("sensors", 1, false, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("sentinel: publish: %v", tok.Error())
	}
	return nil
}

// awaitSentinel polls readings/ until the sentinel is there.
func awaitSentinel(ctx context.Context, lakeDir string, timeout time.Duration) error {
	chk, err := lakecheck.Open(lakeDir)
	if err != nil {
		return err
	}
	defer chk.Close()
	return testkit.Poll(timeout, 500*time.Millisecond, func() bool {
		ok, err := chk.HasSensor(ctx, sentinelID)
		return err == nil && ok
	}, "the sentinel in readings/")
}

// account fills res from the lake: the truth files (one line per acknowledged message) against
// readings/, duplicates, and raw/ holding every acknowledged message.
func account(ctx context.Context, res *Result, lakeDir string, stats simulate.Stats, truths ...string) error {
	res.Sent, res.Acked = stats.Sent, stats.Published
	chk, err := lakecheck.Open(lakeDir)
	if err != nil {
		return err
	}
	defer chk.Close()
	var expected int64
	for _, t := range truths {
		tr, err := chk.AgainstTruth(ctx, t)
		if err != nil {
			return err
		}
		expected += tr.Expected
		res.InLake += tr.Found
		res.Lost += tr.Lost
		res.WrongValues += tr.WrongValue
	}
	rd, err := chk.Readings(ctx, sentinelID)
	if err != nil {
		return err
	}
	res.Duplicates = rd.Duplicates()
	res.Unacked = rd.Distinct - res.InLake
	res.Check(expected == res.Acked, "one truth line per acknowledged message", "%d truth lines, %d acknowledged", expected, res.Acked)
	res.Check(stats.Unacked == 0, "every message sent was acknowledged in the end",
		"%d sent, %d acknowledged, %d never acknowledged (the publishers waited up to their drain timeout)", stats.Sent, stats.Published, stats.Unacked)
	raw, err := chk.Raw(ctx)
	if err != nil {
		return err
	}
	res.Check(raw.DistinctPayloads >= rd.Distinct, "raw/ holds every message readings/ holds",
		"raw/: %d rows, %d distinct payloads; readings/: %d distinct", raw.Rows, raw.DistinctPayloads, rd.Distinct)
	minutes, mismatched, err := chk.Minutes(ctx)
	if err != nil {
		return err
	}
	res.Check(mismatched == 0, "readings_1m/ agrees with readings/ minute by minute",
		"%d of %d minutes differ (count or sum)", mismatched, minutes)
	for _, table := range []string{"raw", "readings", "readings_1m", "quarantine"} {
		if _, err := chk.ReadAll(ctx, table); err != nil {
			res.Check(false, "every committed file of "+table+"/ reads back whole", "%v", err)
		}
	}
	return nil
}

// walCorrupt lists the parts of the log that recovery moved aside as damaged.
func walCorrupt(dataDir string) []string {
	m, _ := filepath.Glob(filepath.Join(dataDir, "wal", "*.corrupt-*"))
	return m
}

// logLines returns the lines of logs that contain every one of words.
func logLines(logs string, words ...string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		all := true
		for _, w := range words {
			if !strings.Contains(l, w) {
				all = false
				break
			}
		}
		if all && l != "" {
			out = append(out, l)
		}
	}
	return out
}
