package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob/fileblob"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/lake/delta"
	"github.com/sluice-project/sluice/internal/sensor"
)

// Built-in view names.
const (
	ViewReadings   = "readings"
	ViewRaw        = "raw"
	ViewQuarantine = "quarantine"
	ViewSensors    = "sensors"
	ViewLatest     = "latest"
	// ViewReadings1m merges the lake's readings_1m/ table into one row per sensor, metric and minute.
	ViewReadings1m = "readings_1m"
	// ViewRegistryVersions reads the lake's sensors/ table: every version of the registry, raw.
	ViewRegistryVersions = "registry_versions"
)

// Option configures Open.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	reg      prometheus.Registerer
	setup    []string
	hotAppID func(int32) string
	poll     bool
	index    bool
	registry func(digest string) *sensor.Registry
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the engine's metrics (sluice_query_*) on reg.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithSetup runs statements (macros, compatibility views) once at Open, before the configuration is
// locked. The PostgreSQL protocol server uses it for the functions PostgreSQL clients expect.
func WithSetup(stmts ...string) Option {
	return func(o *options) { o.setup = append(o.setup, stmts...) }
}

// WithHotReadings makes the readings view include hot rows (see AddReadings). appID names the Delta
// appId whose txn version is the last log offset committed for a partition: the decoder's.
func WithHotReadings(appID func(partition int32) string) Option {
	return func(o *options) { o.hotAppID = appID }
}

// WithRegistry hands the engine the registries its caller already holds: when the newest version in
// the sensors/ table has a digest for which have returns a registry, the engine loads that one instead
// of reading the version's raw bytes and parsing them again (with 100,000 sensors, a 26 MB file and
// ~300 MB of allocations). have returns nil for a digest it does not hold.
func WithRegistry(have func(digest string) *sensor.Registry) Option {
	return func(o *options) { o.registry = have }
}

// Static makes the engine read the lake once at Open: no polling of the Delta logs, no background
// indexing (the latest view then scans the files itself). For one-shot use (sluice query --lake).
func Static() Option { return func(o *options) { o.poll, o.index = false, false } }

// Engine is the SQL engine: an in-memory DuckDB whose views read the lake's committed files and the
// hot rows. Safe for concurrent use.
type Engine struct {
	cfg     Config
	lakeURL string
	lakeDir string
	tmpDir  string
	opts    options
	logger  *slog.Logger
	m       *metrics

	connector *duckdb.Connector
	db        *sql.DB
	store     delta.Store
	sem       chan struct{}
	ration    *ration

	refreshMu sync.Mutex // serialises changes to views and engine tables (the admin connection)
	admin     *sql.Conn
	tables    map[string]*tableState
	hot       *hotReadings
	indexed   map[string]bool // readings files folded into the latest index
	unindexed []string        // readings files the latest view still scans itself
	// when the oldest of unindexed was found (zero when none)
	unindexedSince time.Time

	stop   context.CancelFunc
	bg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once
}

// Open starts an engine over the lake at lakeURL, which must be file:// (DuckDB reads the files; it
// cannot reach object stores here, having no httpfs). It defines the views readings, raw,
// quarantine, latest, sensors and registry_versions, plus one per other Delta table in the lake, and
// keeps them current: by polling the logs every cfg.RefreshInterval, and at once for commits
// reported with CommittedReadings.
func Open(ctx context.Context, lakeURL string, cfg Config, opts ...Option) (*Engine, error) {
	o := options{logger: slog.Default(), poll: true, index: true}
	for _, fn := range opts {
		fn(&o)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("query engine: %w", errs.Err())
	}
	dir, err := LocalLakeDir(lakeURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("query engine: lake %s: %w", lakeURL, err)
	}
	bucket, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
	if err != nil {
		return nil, fmt.Errorf("query engine: lake %s: %w", lakeURL, err)
	}
	e := &Engine{
		cfg: cfg, lakeURL: lakeURL, lakeDir: dir, opts: o, logger: o.logger, m: newMetrics(o.reg),
		store: delta.NewBlobStore(bucket, dir), sem: make(chan struct{}, cfg.MaxConcurrent),
		ration: newRation(cfg.ExecutionShare, cfg.ExecutionBurst, time.Now()),
		tables: map[string]*tableState{}, indexed: map[string]bool{}, closed: make(chan struct{}),
	}
	if err := e.open(ctx); err != nil {
		e.release()
		bucket.Close()
		return nil, err
	}
	for _, t := range []Table{
		{Name: ViewReadings, Columns: ColumnsOf(lake.ReadingsSpec())},
		{Name: ViewRaw, Columns: ColumnsOf(lake.RawSpec())},
		{Name: ViewQuarantine, Columns: ColumnsOf(lake.QuarantineSpec())},
		{Name: ViewReadings1m, Columns: ColumnsOf(lake.Readings1mSpec())},
		{Name: ViewRegistryVersions, Dir: lake.SensorsSpec().Name, Columns: ColumnsOf(lake.SensorsSpec())},
	} {
		if err := e.Register(ctx, t); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.Refresh(ctx); err != nil {
		e.Close()
		return nil, err
	}
	bgCtx, stop := context.WithCancel(context.Background())
	e.stop = stop
	if e.hot != nil {
		e.bg.Go(func() { e.hot.run(bgCtx, cfg.HotFlushInterval) })
	}
	if o.poll {
		e.bg.Go(func() { e.poll(bgCtx) })
	}
	if o.index {
		e.bg.Go(func() { e.indexLoop(bgCtx) })
	}
	_ = bucket // closed with the store's lifetime: fileblob holds no resources but open files
	return e, nil
}

// LocalLakeDir returns the directory of a file:// lake URL, or an error saying why SQL cannot read
// any other lake.
func LocalLakeDir(lakeURL string) (string, error) {
	u, err := url.Parse(lakeURL)
	if err != nil {
		return "", &Error{Kind: ErrUnavailable, Message: fmt.Sprintf("lake URL %q: %v", lakeURL, err), Offset: -1}
	}
	if u.Scheme != "file" {
		return "", &Error{Kind: ErrUnavailable, Offset: -1, Message: fmt.Sprintf(
			"SQL needs a lake on a local disk (file://), not %s://: DuckDB reads object stores only through its httpfs extension, which this build cannot load. "+
				"Query such a lake with Spark, Trino, Databricks or a DuckDB that has the httpfs and delta extensions", u.Scheme)}
	}
	if u.Path == "" || (u.Host != "" && u.Host != "localhost") {
		return "", &Error{Kind: ErrUnavailable, Message: fmt.Sprintf("lake URL %q: want file:///absolute/path", lakeURL), Offset: -1}
	}
	p := u.Path
	if runtime.GOOS == "windows" && len(p) > 2 && p[0] == '/' && p[2] == ':' {
		p = p[1:]
	}
	return filepath.Clean(filepath.FromSlash(p)), nil
}

// open starts DuckDB (on a low-priority thread, so its worker threads inherit the priority), applies
// the settings and the sandbox, and locks the configuration.
func (e *Engine) open(ctx context.Context) error {
	threads := e.cfg.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	base := e.cfg.TempDir
	if base != "" {
		if err := os.MkdirAll(base, 0o755); err != nil {
			return fmt.Errorf("query engine: temp dir: %w", err)
		}
		// Spill directories of earlier runs that ended without Close.
		if old, _ := filepath.Glob(filepath.Join(base, "spill-*")); len(old) > 0 {
			for _, d := range old {
				_ = os.RemoveAll(d)
			}
		}
	}
	d, err := os.MkdirTemp(base, "spill-")
	if err != nil {
		return fmt.Errorf("query engine: temp dir: %w", err)
	}
	e.tmpDir = d
	dsn := fmt.Sprintf("?threads=%d&memory_limit=%dB&temp_directory=%s", threads, int64(e.cfg.MemoryLimit), url.QueryEscape(e.tmpDir))
	lowPriority(e.cfg.Nice, func() { e.connector, err = duckdb.NewConnector(dsn, useCatalog) })
	if err != nil {
		return fmt.Errorf("query engine: open DuckDB: %w", err)
	}
	e.db = sql.OpenDB(e.connector)
	e.db.SetMaxOpenConns(e.cfg.MaxConcurrent + 4) // queries, admin, hot appender, indexer, spare
	e.db.SetMaxIdleConns(e.cfg.MaxConcurrent + 4)
	e.db.SetConnMaxIdleTime(0)
	e.admin, err = e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("query engine: %w", err)
	}
	stmts := []string{
		"SET TimeZone = 'UTC'",
		"SET parquet_metadata_cache = true",
		// Hand memory DuckDB freed back to the OS: by default its allocator keeps up to 128MB a thread
		// cached, and checkpoints free blocks all the time (the uncompressed hot rows they replace).
		// 100,000 sensors, QoS 1, 32 connections, 40 s, alternate runs: peak RSS 632-639 MiB without
		// either setting, 620-634 with the threshold, 578-603 with both.
		"SET allocator_flush_threshold = '8MB'",
		"SET allocator_background_threads = true",
		"CREATE SCHEMA _sluice",
	}
	stmts = append(stmts, hotDDL...)
	stmts = append(stmts,
		latestIndexDDL,
		registryDDL,
		registryNextDDL,
		timeBucketMacro,
	)
	stmts = append(stmts, e.opts.setup...)
	stmts = append(stmts,
		"SET allowed_directories = ["+quoteString(e.lakeDir+string(filepath.Separator))+", "+quoteString(e.tmpDir+string(filepath.Separator))+"]",
		"SET enable_external_access = false",
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET allow_community_extensions = false",
		"SET lock_configuration = true",
	)
	for _, s := range stmts {
		if _, err := e.admin.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("query engine: setup %q: %w", firstLine(s), err)
		}
	}
	if e.opts.hotAppID != nil {
		h, err := newHotReadings(ctx, e, e.opts.hotAppID)
		if err != nil {
			return err
		}
		e.hot = h
	}
	return nil
}

// catalogName is the in-memory database that holds the engine's views and tables. It is attached
// with COMPRESS, so a CHECKPOINT stores its tables the way DuckDB stores a database file (dictionary,
// delta, ALP...): the hot rows (see hot.go) take about a tenth of their uncompressed memory. Every
// connection makes it its default (USE), so queries name tables without it; users can neither
// ATTACH, DETACH nor USE (sandbox.go).
const catalogName = "sluice"

// useCatalog runs on every new DuckDB connection: the first attaches the catalog, each uses it.
func useCatalog(ex driver.ExecerContext) error {
	for _, q := range []string{"ATTACH IF NOT EXISTS ':memory:' AS " + catalogName + " (COMPRESS)", "USE " + catalogName} {
		if _, err := ex.ExecContext(context.Background(), q, nil); err != nil {
			return fmt.Errorf("query engine: %s: %w", q, err)
		}
	}
	return nil
}

// timeBucketMacro makes time_bucket on TIMESTAMP WITH TIME ZONE with a width of days, hours,
// minutes or seconds integer arithmetic on microseconds: DuckDB's ICU implementation takes ~80 ns a
// value (7 s for a day of 1,000 sensors at 1 Hz, against 2 s in total this way). The session time
// zone is UTC, where both give the same buckets, from the same origin (2000-01-03, a Monday). Widths
// in months or years, other types and the three-argument forms go to DuckDB's own
// (TestTimeBucketMatchesDuckDB). One difference: a macro has one result type, so the two-argument
// form returns TIMESTAMP WITH TIME ZONE for DATE and TIMESTAMP arguments too (the same instant, UTC).
const timeBucketMacro = `CREATE MACRO time_bucket(w, t) AS CASE
  WHEN typeof(t) = 'TIMESTAMP WITH TIME ZONE' AND datepart('month', w) = 0 AND datepart('year', w) = 0 AND epoch_us(w) > 0
  THEN make_timestamptz(epoch_us(t) - ((((epoch_us(t) - 946857600000000) % epoch_us(w)) + epoch_us(w)) % epoch_us(w)))
  ELSE system.main.time_bucket(w, t) END,
 (w, t, x) AS system.main.time_bucket(w, t, x)`

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "…"
	}
	return s
}

// Register adds (or replaces) a view over a Delta table of the lake, and defines it at once from
// the table's log (or its Columns, while the table does not exist).
func (e *Engine) Register(ctx context.Context, t Table) error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("query engine: register: %w", err)
	}
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	ts := &tableState{spec: t, version: -1}
	if t.Name == ViewReadings {
		ts.hot = e.hot
	}
	e.tables[t.Name] = ts
	return e.refreshTable(ctx, ts, true)
}

// Refresh reads every table's log and brings the views up to date; it also registers tables that
// appeared in the lake since.
func (e *Engine) Refresh(ctx context.Context) error {
	e.discover(ctx)
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	var errs []error
	for _, n := range sortedNames(e.tables) {
		if err := e.refreshTable(ctx, e.tables[n], false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CommittedReadings tells the engine that readings up to log offset last of partition were
// committed to the lake: the readings view takes the new files and drops those hot rows, in one
// step. Called by the decoder after each commit; errors are logged (polling retries).
func (e *Engine) CommittedReadings(ctx context.Context, partition int32, last int64) {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	ts := e.tables[ViewReadings]
	if ts == nil {
		return
	}
	if err := e.refreshTable(ctx, ts, false); err != nil {
		e.logger.Warn("query engine: taking the new readings commit failed; polling retries", "partition", partition, "offset", last, "err", err)
	}
}

// AddReadings hands the engine readings of partition that are processed but not yet committed
// (hot rows). Rows are copied; their Series are kept until they are written to DuckDB. Called by
// the decoder; a no-op unless the engine was opened WithHotReadings.
func (e *Engine) AddReadings(partition int32, rows []lake.Reading) {
	if len(rows) > 0 {
		e.ration.ingest(time.Now())
	}
	if e.hot != nil {
		e.hot.add(partition, rows)
	}
}

// refreshTable reads ts's log and, when it changed (or force), redefines its view. Caller holds
// refreshMu.
func (e *Engine) refreshTable(ctx context.Context, ts *tableState, force bool) error {
	changed, err := e.updateLog(ctx, ts)
	if err != nil {
		e.m.refreshErrors.Inc()
		return fmt.Errorf("query engine: %w", err)
	}
	if !changed && !force && ts.defined {
		return nil
	}
	if ts.log == nil && ts.spec.Columns == nil && ts.hot == nil {
		return nil // nothing to show yet
	}
	if err := e.apply(ctx, ts); err != nil {
		e.m.refreshErrors.Inc()
		return fmt.Errorf("query engine: define view %s: %w", ts.spec.Name, err)
	}
	e.m.refreshes.WithLabelValues(ts.spec.Name).Inc()
	e.m.tableFiles.WithLabelValues(ts.spec.Name).Set(float64(len(ts.files)))
	e.m.tableVersion.WithLabelValues(ts.spec.Name).Set(float64(ts.version))
	return nil
}

// apply redefines ts's view in one DuckDB transaction, together with what depends on it: for
// readings, the hot rows its commits cover are deleted and the latest view takes the new files;
// for the registry, the current registry is reloaded. Caller holds refreshMu.
func (e *Engine) apply(ctx context.Context, ts *tableState) error {
	var stmts []string
	if ts.spec.Name == ViewReadings1m {
		stmts = append(stmts, rollupViewSQL(ts, e.hot))
	} else {
		stmts = append(stmts, viewSQL(ts))
	}
	var rollup *tableState // redefined with readings, so hot rows they drop are in its files
	if ts.spec.Name == ViewReadings {
		if m := e.tables[ViewReadings1m]; m != nil && e.hot != nil {
			if _, err := e.updateLog(ctx, m); err != nil {
				return err
			}
			if m.log != nil {
				rollup = m
				stmts = append(stmts, rollupViewSQL(m, e.hot))
			}
		}
		known := map[string]bool{}
		var unindexed []string
		for _, f := range ts.files {
			known[f] = true
			if !e.indexed[f] {
				unindexed = append(unindexed, f)
			}
		}
		for f := range e.indexed {
			if !known[f] { // removed by compaction: its rows are in the files that replaced it
				delete(e.indexed, f)
			}
		}
		e.setUnindexed(unindexed, time.Now())
		stmts = append(stmts, latestViewSQL(e.unindexed, ts.hot != nil))
	}
	if ts.spec.dir() == lake.SensorsSpec().Name {
		reg, err := e.registryStatements(ctx, ts)
		if err != nil {
			e.logger.Warn("query engine: reading the current sensor registry failed; the sensors view keeps the previous one", "err", err)
		}
		stmts = append(stmts, reg...)
	}
	if ts.hot != nil {
		ts.hot.writeMu.Lock()
		defer ts.hot.writeMu.Unlock()
		if err := ts.hot.flushLocked(); err != nil {
			e.logger.Warn("hot rows: appending to the SQL engine failed; they become queryable when their file is committed", "err", err)
		}
		if ts.log != nil {
			if del := ts.hot.deleteSQL(txnVersions(ts.log.Snapshot())); del != "" {
				stmts = append(stmts, del)
			}
		}
	}
	if !ts.defined {
		stmts = append(stmts, sensorsViewSQL)
	}
	tx, err := e.admin.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var deleted int64
	for _, s := range stmts {
		res, err := tx.ExecContext(ctx, s)
		if err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
		if strings.HasPrefix(s, "DELETE FROM "+hotRowsTable) {
			deleted, _ = res.RowsAffected()
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if ts.hot != nil {
		ts.hot.rows -= int(deleted)
		e.m.hotRows.Set(float64(ts.hot.rows))
	}
	ts.defined = true
	if rollup != nil {
		rollup.defined = true
	}
	return nil
}

// discover registers every Delta table in the lake's root that has no view yet, under its
// directory's name (when that is a valid name).
func (e *Engine) discover(ctx context.Context) {
	entries, err := os.ReadDir(e.lakeDir)
	if err != nil {
		return
	}
	e.refreshMu.Lock()
	have := map[string]bool{}
	for _, ts := range e.tables {
		have[ts.spec.dir()] = true
	}
	e.refreshMu.Unlock()
	for _, ent := range entries {
		name := ent.Name()
		if !ent.IsDir() || have[name] || !identRE.MatchString(name) || strings.HasPrefix(name, "_") {
			continue
		}
		if _, err := os.Stat(filepath.Join(e.lakeDir, name, "_delta_log", delta.CommitName(0))); err != nil {
			continue
		}
		if err := e.Register(ctx, Table{Name: name}); err != nil {
			e.logger.Warn("query engine: cannot expose a table found in the lake", "dir", name, "err", err)
			continue
		}
		e.logger.Info("query engine: new lake table exposed as a view", "view", name)
	}
}

// poll refreshes every RefreshInterval until ctx is done.
func (e *Engine) poll(ctx context.Context) {
	t := time.NewTicker(e.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.Refresh(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("query engine: refresh failed", "err", err)
		}
	}
}

// Ready reports nil while the engine serves queries.
func (e *Engine) Ready(ctx context.Context) error {
	select {
	case <-e.closed:
		return &Error{Kind: ErrUnavailable, Message: "the SQL engine is closed", Offset: -1}
	default:
	}
	return e.admin.PingContext(ctx)
}

// Tables returns the names of the registered views, sorted.
func (e *Engine) Tables() []string {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	return sortedNames(e.tables)
}

// Close stops the background work and closes DuckDB. Queries running are cancelled.
func (e *Engine) Close() error {
	e.once.Do(func() {
		close(e.closed)
		if e.stop != nil {
			e.stop()
		}
		e.bg.Wait()
		e.release()
	})
	return nil
}

func (e *Engine) release() {
	if e.hot != nil {
		e.hot.close()
	}
	if e.admin != nil {
		_ = e.admin.Close()
	}
	if e.db != nil {
		_ = e.db.Close() // closes the connector
	} else if e.connector != nil {
		_ = e.connector.Close()
	}
	if e.tmpDir != "" {
		_ = os.RemoveAll(e.tmpDir)
	}
}
