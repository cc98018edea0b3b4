package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-project/sluice/internal/broker"
	"github.com/sluice-project/sluice/internal/httpapi"
	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/log/wal"
	"github.com/sluice-project/sluice/internal/pipeline"
	"github.com/sluice-project/sluice/internal/query"
	"github.com/sluice-project/sluice/internal/query/httpsql"
	"github.com/sluice-project/sluice/internal/query/pgwire"
	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/simulate"
	"github.com/sluice-project/sluice/internal/source/mqtt"
)

// ReadyMessage is the log line sluice writes once it takes messages; it carries the listening
// addresses (mqtt, http) so scripts and tests that start sluice on port 0 can find them.
const ReadyMessage = "sluice ready"

// ShutdownTimeout bounds how long stages may take to read the log to its end and commit on shutdown;
// past it they commit what they processed and the rest is replayed at the next start.
const ShutdownTimeout = 30 * time.Second

// Options are run-time choices that are not configuration.
type Options struct {
	// Simulate also runs the simulator against the ingest path.
	Simulate bool
}

// App is one running sluice.
type App struct {
	cfg    Config
	opts   Options
	logger *slog.Logger
	reg    *prometheus.Registry

	sensors  atomic.Pointer[sensor.Registry] // the registry the decoder has, for the SQL engine
	ready    chan struct{}
	mqttAddr net.Addr
	httpAddr net.Addr
}

// liveHeap adds go_gc_heap_live_bytes to the Go collector's defaults: the heap the last collection
// found live. The heap in use grows past it to what GOGC and runtime.memory_limit allow, so it is
// the figure that says how much sluice needs, not how much the collector let it take.
var liveHeap = collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})

// New returns an app for cfg (already loaded and validated).
func New(cfg Config, opts Options, logger *slog.Logger) *App {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(liveHeap), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &App{cfg: cfg, opts: opts, logger: logger, reg: reg, ready: make(chan struct{})}
}

// Ready is closed once sluice takes messages.
func (a *App) Ready() <-chan struct{} { return a.ready }

// MQTTAddr is the embedded broker's TCP address (nil with an external broker). Valid after Ready.
func (a *App) MQTTAddr() net.Addr { return a.mqttAddr }

// HTTPAddr is the HTTP listener's address (nil when disabled). Valid after Ready.
func (a *App) HTTPAddr() net.Addr { return a.httpAddr }

// Registry returns the metrics registry.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// Run starts everything, serves until ctx is done, then shuts down in order and returns nil when the
// shutdown was clean.
func (a *App) Run(ctx context.Context) (err error) {
	cfg := a.cfg
	if err := cfg.Resolve(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	defer a.applyMemoryLimit(cfg.Runtime)()
	var closers []func() error // run in reverse on the way out
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()

	lk, err := lake.Open(ctx, cfg.Lake.URL, lake.WithLogger(a.logger.With("component", "lake")), lake.WithRegisterer(a.reg))
	if err != nil {
		return err
	}
	closers = append(closers, lk.Close)

	log, err := wal.Open(cfg.WAL, a.logger.With("component", "wal"), a.reg)
	if err != nil {
		return err
	}
	closers = append(closers, log.Close)

	poller := newRegistryPoller(cfg.Sensors) // before the read: a change after it is seen by the reloader
	reg, raw, err := sensor.Load(cfg.Sensors)
	if err != nil {
		return fmt.Errorf("sensors: %w", err)
	}
	registryOrigin := cfg.Sensors.File
	if a.opts.Simulate && cfg.Sensors.File == "" && len(cfg.Sensors.Sensors) == 0 && cfg.Simulate.Sensors == "" {
		// The simulator publishes its built-in fleet: let the registry know those sensors.
		reg, raw = sensor.Builtin()
		registryOrigin = "builtin"
	}
	archive, err := newRegistryArchive(ctx, lk, cfg.Lake)
	if err != nil {
		return err
	}
	if err := archive.store(ctx, reg, raw, registryOrigin); err != nil {
		return err
	}
	a.sensors.Store(reg)
	poller.took(reg)
	raw = nil
	// Reading and parsing the registry file allocates ~10 times its size (100,000 sensors: 26 MB of
	// JSON, ~250 MB), all garbage now; the heap it grew would stay resident until the scavenger gets
	// to it. Give it back before ingest starts: idle RSS with 100,000 sensors 336 -> 274 MiB (what
	// the Go runtime holds: 219 -> 105 MiB).
	debug.FreeOSMemory()

	archiver, err := pipeline.NewArchiver(ctx, lk, cfg.Lake)
	if err != nil {
		return err
	}
	decoder, err := pipeline.NewDecoder(ctx, lk, cfg.Lake, cfg.Decode, reg, cfg.Dedup, a.reg)
	if err != nil {
		return err
	}
	// SQL: the engine opens in the background (it reads every Delta log) while sluice takes
	// messages; the decoder feeds its hot rows through sqlHot meanwhile.
	sqlWanted := a.queryWanted(cfg)
	var sqlHot *query.Deferred
	var sqlEngine atomic.Pointer[query.Engine]
	var sqlOpen sync.WaitGroup
	var pgs *pgwire.Server
	sqlCtx, stopSQL := context.WithCancel(ctx)
	defer stopSQL()
	if sqlWanted {
		sqlHot = query.NewDeferred()
		decoder.SetHot(sqlHot)
		closers = append(closers, func() error { // after HTTP, which closes first
			stopSQL()
			sqlOpen.Wait()
			var err error
			if pgs != nil {
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err = pgs.Close(cctx)
				cancel()
			}
			if e := sqlEngine.Load(); e != nil {
				if cerr := e.Close(); err == nil {
					err = cerr
				}
			}
			return err
		})
	}
	var runners []*pipeline.Runner
	for _, st := range []struct {
		name  string
		stage pipeline.Stage
	}{{pipeline.ArchiverName, archiver}, {pipeline.DecoderName, decoder}} {
		r, err := pipeline.NewRunner(st.name, log, st.stage, a.logger, a.reg)
		if err != nil {
			return err
		}
		runners = append(runners, r)
	}

	// Stages run on their own context: on shutdown they drain after ingest stopped, and are cut off
	// only if draining outlasts ShutdownTimeout.
	stageCtx, stopStages := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStages()
	var stages sync.WaitGroup
	stageErr := make(chan error, len(runners))
	for _, r := range runners {
		stages.Go(func() {
			if err := r.Run(stageCtx); err != nil && !errors.Is(err, context.Canceled) {
				stageErr <- err
			}
		})
	}
	stopStagesInOrder := func() {
		for _, r := range runners {
			r.Drain()
		}
		done := make(chan struct{})
		go func() { stages.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(ShutdownTimeout):
			a.logger.Warn("stages did not drain in time; committing what they processed", "timeout", ShutdownTimeout)
			stopStages()
			<-done
		}
	}

	if a.opts.Simulate {
		// The demo must start wherever it runs: a default port someone else holds (often Mosquitto on
		// 1883) moves to a free one, and the simulator is pointed at it. Without --simulate a taken
		// port stops sluice with the fix, as sluice must not pretend to be the broker publishers expect.
		cfg.Broker.Listen = a.freeIfTaken(cfg.Broker.Listen, broker.DefaultConfig().Listen, "embedded MQTT broker")
		cfg.HTTP.Listen = a.freeIfTaken(cfg.HTTP.Listen, httpapi.DefaultConfig().Listen, "HTTP")
		if sqlWanted {
			cfg.Query.PGWire.Listen = a.freeIfTaken(cfg.Query.PGWire.Listen, query.DefaultConfig().PGWire.Listen, "PostgreSQL protocol")
		}
	}

	// Ingest.
	ingestCtx, stopIngest := context.WithCancel(ctx)
	defer stopIngest()
	var ingest sync.WaitGroup
	ingestErr := make(chan error, 1)
	var stopIngestInOrder func()
	var ingestReady func() error
	if cfg.MQTT.Broker == "" {
		b, err := broker.New(cfg.Broker, log, a.logger.With("component", "broker"), a.reg)
		if err != nil {
			stopStagesInOrder()
			return err
		}
		if err := b.Start(); err != nil {
			stopStagesInOrder()
			return err
		}
		a.mqttAddr = b.Addr()
		ingestReady = b.Ready
		stopIngestInOrder = func() {
			if err := b.Close(); err != nil {
				a.logger.Warn("embedded broker close", "err", err)
			}
		}
	} else {
		src, err := mqtt.New(cfg.MQTT, log, a.logger.With("component", "mqtt"), a.reg)
		if err != nil {
			stopStagesInOrder()
			return err
		}
		ingestReady = src.Ready
		ingest.Go(func() {
			if err := src.Run(ingestCtx); err != nil && !errors.Is(err, context.Canceled) {
				ingestErr <- err
			}
		})
		stopIngestInOrder = func() { stopIngest(); ingest.Wait() }
	}

	// HTTP.
	var hs *httpapi.Server
	if cfg.HTTP.Listen != "" {
		hs = httpapi.New(cfg.HTTP, a.reg, a.logger.With("component", "http"))
		hs.AddCheck("ingest", func(context.Context) error { return ingestReady() })
		if sqlWanted {
			hs.AddCheck("query", func(ctx context.Context) error {
				if e := sqlEngine.Load(); e != nil {
					return e.Ready(ctx)
				}
				return nil // still opening: ingest does not wait for it
			})
			qlog := a.logger.With("component", "query")
			hs.Handle("POST "+httpsql.Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				e := sqlEngine.Load()
				if e == nil {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusServiceUnavailable)
					fmt.Fprintln(w, `{"error":{"kind":"unavailable","message":"the SQL engine is still opening the lake; try again in a moment"}}`)
					return
				}
				httpsql.Handler(e, qlog).ServeHTTP(w, r)
			}))
		}
		if err := hs.Start(); err != nil {
			stopIngestInOrder()
			stopStagesInOrder()
			return err
		}
		a.httpAddr = hs.Addr()
		closers = append(closers, func() error {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Close(cctx)
		})
	}

	if sqlWanted {
		sqlOpen.Go(func() {
			e, err := a.openQuery(sqlCtx, cfg)
			if err != nil {
				if sqlCtx.Err() == nil {
					a.logger.Error("SQL off: the engine did not open; sluice runs on without it", "err", err)
				}
				return
			}
			sqlHot.Attach(sqlCtx, e)
			sqlEngine.Store(e)
			if cfg.Query.PGWire.Listen == "" {
				a.logger.Info("SQL ready", "http", a.httpAddr)
				return
			}
			ps, err := pgwire.New(e, cfg.Query.PGWire, a.logger.With("component", "pgwire"))
			if err == nil {
				err = ps.Start()
			}
			if err != nil {
				a.logger.Error("PostgreSQL protocol off; SQL over HTTP still works", "listen", cfg.Query.PGWire.Listen, "err", err)
				return
			}
			pgs = ps
			a.logger.Info("SQL ready", "http", a.httpAddr, "pgwire", ps.Addr().String())
		})
	}

	// The registry reloader and the simulator.
	var extras sync.WaitGroup
	extrasCtx, stopExtras := context.WithCancel(ctx)
	defer stopExtras()
	if cfg.Sensors.File != "" && cfg.Sensors.ReloadInterval > 0 {
		extras.Go(func() { a.reloadSensors(extrasCtx, cfg.Sensors, archive, decoder, poller) })
	}
	if a.opts.Simulate {
		sc := cfg.Simulate
		if a.mqttAddr != nil {
			sc.Broker = "mqtt://" + a.mqttAddr.String()
		} else {
			sc.Broker = cfg.MQTT.Broker
		}
		if sc.Sensors == "" {
			sc.Sensors = cfg.Sensors.File
		}
		extras.Go(func() {
			stats, err := simulate.Run(extrasCtx, sc, a.logger.With("component", "simulate"))
			if err != nil && !errors.Is(err, context.Canceled) {
				a.logger.Error("simulator stopped", "err", err)
				return
			}
			a.logger.Info("simulator finished", "published", stats.Published, "rate", fmt.Sprintf("%.0f msg/s", stats.Rate()))
		})
	}

	attrs := []any{"data_dir", cfg.DataDir, "lake", cfg.Lake.URL}
	if a.mqttAddr != nil {
		attrs = append(attrs, "mqtt", a.mqttAddr.String())
	} else {
		attrs = append(attrs, "mqtt_broker", cfg.MQTT.Broker)
	}
	if a.httpAddr != nil {
		attrs = append(attrs, "http", a.httpAddr.String())
	}

	a.logger.Info(ReadyMessage, attrs...)
	close(a.ready)

	var runErr error
	select {
	case <-ctx.Done():
		a.logger.Info("shutting down: stopping ingest, then committing what the log holds")
	case runErr = <-stageErr:
		a.logger.Error("a stage failed; shutting down", "err", runErr)
	case runErr = <-ingestErr:
		a.logger.Error("ingest failed; shutting down", "err", runErr)
	}
	stopExtras()
	extras.Wait()
	stopIngestInOrder()
	stopStagesInOrder()
	select {
	case err := <-stageErr:
		if runErr == nil {
			runErr = err
		}
	default:
	}
	if runErr == nil {
		a.logger.Info("stopped cleanly")
	}
	return runErr
}

// applyMemoryLimit sets the Go runtime's soft memory limit from cfg, unless GOMEMLIMIT is set, and
// returns the function that restores the previous one.
func (a *App) applyMemoryLimit(cfg RuntimeConfig) func() {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		a.logger.Info("runtime.memory_limit left to the GOMEMLIMIT environment variable", "GOMEMLIMIT", env)
		return func() {}
	}
	if cfg.MemoryLimit <= 0 {
		return func() {}
	}
	prev := debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	return func() { debug.SetMemoryLimit(prev) }
}

// freeIfTaken returns addr, or a free port on the same host when addr is the default and another
// process holds it.
func (a *App) freeIfTaken(addr, def, what string) string {
	if addr != def {
		return addr
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return addr
	}
	host, _, _ := net.SplitHostPort(addr)
	moved := net.JoinHostPort(host, "0")
	a.logger.Warn("default address taken by another process; --simulate uses a free port instead", "listener", what, "taken", addr, "err", err)
	return moved
}

// queryWanted reports whether SQL is on and can read the lake (it says why not in the log).
func (a *App) queryWanted(cfg Config) bool {
	if !cfg.Query.Enabled {
		return false
	}
	if _, err := query.LocalLakeDir(cfg.Lake.URL); err != nil {
		a.logger.Warn("SQL off for this lake", "lake", cfg.Lake.URL, "reason", err)
		return false
	}
	return true
}

// openQuery opens the SQL engine over the lake.
func (a *App) openQuery(ctx context.Context, cfg Config) (*query.Engine, error) {
	qc := cfg.Query
	if qc.TempDir == "" {
		qc.TempDir = filepath.Join(cfg.DataDir, "query-tmp")
	}
	e, err := query.Open(ctx, cfg.Lake.URL, qc, query.WithLogger(a.logger.With("component", "query")), query.WithRegisterer(a.reg),
		query.WithSetup(pgwire.Setup...), query.WithHotReadings(pipeline.DecoderAppID),
		query.WithRegistry(func(digest string) *sensor.Registry {
			if r := a.sensors.Load(); r != nil && r.Digest() == digest {
				return r
			}
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return e, nil
}

// reloadSensors polls the registry file and, when its content changes, archives the new version and
// hands it to the decoder.
func (a *App) reloadSensors(ctx context.Context, cfg sensor.Config, archive *registryArchive, dec *pipeline.Decoder, p *registryPoller) {
	t := time.NewTicker(cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reg, raw, err := p.poll()
		if err != nil {
			a.logger.Warn("sensor registry reload failed; keeping the current one", "file", cfg.File, "err", err)
			continue
		}
		if reg == nil {
			continue
		}
		if err := archive.store(ctx, reg, raw, cfg.File); err != nil {
			a.logger.Warn("archiving the new sensor registry failed; will retry", "err", err)
			continue
		}
		a.sensors.Store(reg)
		dec.SetRegistry(reg)
		p.took(reg)
		a.logger.Info("sensor registry reloaded", "file", cfg.File, "sensors", reg.Len(), "digest", reg.Digest()[:12])
	}
}

// registryPoller tells whether the registry file holds a new version. A file whose size and
// modification time are those of the last read is not read again: with 100,000 sensors a read and
// parse allocates ~250 MB, every reload_interval.
type registryPoller struct {
	cfg           sensor.Config
	digest        string    // the version the decoder has
	seen, pending fileStamp // the file when digest was read; when poll last read it
}

// fileStamp is what a stat says of a file.
type fileStamp struct {
	size    int64
	modTime int64 // Unix nanoseconds
	ok      bool
}

func statFile(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime().UnixNano(), ok: true}
}

// newRegistryPoller stats the file: call it before the first read, so a change after that read is
// seen by the next poll. took records the version read.
func newRegistryPoller(cfg sensor.Config) *registryPoller {
	return &registryPoller{cfg: cfg, pending: statFile(cfg.File)}
}

// poll reads the file if its stamp changed since the version the decoder has, and returns the
// registry it holds when that is a new version; nil when there is none.
func (p *registryPoller) poll() (*sensor.Registry, []byte, error) {
	stamp := statFile(p.cfg.File)
	if stamp.ok && stamp == p.seen {
		return nil, nil, nil
	}
	reg, raw, err := sensor.Load(p.cfg)
	if err != nil {
		return nil, nil, err
	}
	p.pending = stamp
	if reg.Digest() == p.digest {
		p.seen = stamp // touched, same content
		return nil, nil, nil
	}
	return reg, raw, nil
}

// took records that reg, from the last poll (or the first read), is the version the decoder has.
func (p *registryPoller) took(reg *sensor.Registry) { p.digest, p.seen = reg.Digest(), p.pending }

// registryArchive writes each distinct registry version to the sensors/ table once: the Delta appId
// names the digest, so a version already archived is recognised from the log alone.
type registryArchive struct {
	w *lake.Writer[lake.SensorsRow]
}

func newRegistryArchive(ctx context.Context, lk *lake.Lake, cfg lake.Config) (*registryArchive, error) {
	w, err := lake.NewWriter(ctx, lk, lake.SensorsSpec(), cfg)
	if err != nil {
		return nil, fmt.Errorf("sensors archive: %w", err)
	}
	return &registryArchive{w: w}, nil
}

func (r *registryArchive) store(ctx context.Context, reg *sensor.Registry, raw []byte, origin string) error {
	app := "registry-" + reg.Digest()
	if _, ok, err := r.w.TxnVersion(ctx, app); err != nil || ok {
		return err
	}
	if origin == "" {
		origin = "config"
	}
	r.w.Add(lake.SensorsRow{Digest: reg.Digest(), LoadedAt: time.Now().UnixMicro(), Origin: origin, SensorCount: int32(reg.Len()), Raw: raw})
	if _, err := r.w.Commit(ctx, app, 0); err != nil {
		return fmt.Errorf("archive sensor registry %s: %w", reg.Digest()[:12], err)
	}
	if len(raw) >= releaseAfterArchive {
		go releaseMemory() // not on start-up's path: ~0.3 s at 100,000 sensors
	}
	return nil
}

// releaseAfterArchive: archiving a registry file at least this large is followed by releaseMemory.
// Writing the file as one Parquet value takes encoder buffers of about twice its size from
// parquet-go's pools (sync.Pool), which only garbage collections empty; an idle sluice makes none,
// so they stayed: 63 MB for a 100,000-sensor registry's 26 MB file, of the 221 MiB RSS sluice had
// once ready. A reload of such a file while ingesting costs one more collection, once.
const releaseAfterArchive = 4 << 20

// releaseMemory empties the sync.Pools (a pooled object survives one collection in the pool's victim
// cache, so two) and returns the freed memory to the OS.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
