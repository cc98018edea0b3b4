package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Errors a Table returns.
var (
	// ErrIncompatible is returned when the table in the log is not one this writer may append to: a
	// different schema or partitioning, or a protocol it does not implement.
	ErrIncompatible = errors.New("delta table incompatible")
	// ErrNoTable is returned by Commit on a table that does not exist yet.
	ErrNoTable = errors.New("delta table does not exist")
)

// readAhead is how many commit files are fetched at once when catching up with the log.
const readAhead = 16

// maxConflicts bounds how often one Commit retries at the next version: every conflict means another
// writer committed, so this is only reached by a bug.
const maxConflicts = 10_000

// Options configure a Table.
type Options struct {
	// CheckpointInterval: after committing a version that is a multiple of it, the writer of that
	// version writes a checkpoint (0: never).
	CheckpointInterval int64
	// EngineInfo goes into commitInfo.engineInfo.
	EngineInfo string
	// Now is the clock for commit and file times (nil: time.Now).
	Now func() time.Time
	// Logger receives warnings about checkpoints (nil: slog.Default()).
	Logger *slog.Logger
	// TrackFiles keeps the list of live files in the Snapshot (readers need it; a writer does not,
	// and reads it back from the log only when it writes a checkpoint).
	TrackFiles bool
}

// Table reads and writes the log of one Delta table. It is used by one goroutine.
type Table struct {
	store Store
	root  string // the table's directory, ending in "/" ("" for a table at the store's root)
	opts  Options
	snap  *Snapshot

	expectSchema     *StructType // nil: accept any
	expectPartitions []string
	conflicts        int64
}

// Conflicts counts the versions Commit found taken by another writer, since Open.
func (t *Table) Conflicts() int64 { return t.conflicts }

// Open reads the log of the table at root (a directory in store) as far as it goes. A table that does
// not exist yet gives a Table whose Snapshot has version -1.
func Open(ctx context.Context, store Store, root string, opts Options) (*Table, error) {
	if root != "" && root[len(root)-1] != '/' {
		root += "/"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &Table{store: store, root: root, opts: opts, snap: newSnapshot(opts.TrackFiles)}
	if err := t.load(ctx); err != nil {
		return nil, fmt.Errorf("open table %s: %w", root, err)
	}
	return t, nil
}

// Snapshot returns the state as of the last Update, Create or Commit. It changes on those calls.
func (t *Table) Snapshot() *Snapshot { return t.snap }

// Root returns the table's directory in the store.
func (t *Table) Root() string { return t.root }

func (t *Table) logKey(name string) string { return t.root + LogDir + name }

// load builds the snapshot: from the newest readable checkpoint if there is one, then the commits
// after it.
func (t *Table) load(ctx context.Context) error {
	if err := t.loadCheckpoint(ctx); err != nil {
		return err
	}
	_, err := t.Update(ctx)
	return err
}

// Update reads the commits made since the snapshot's version (by this or any other writer) and
// returns how many it applied. It fetches one commit, then ever more at once while they keep coming,
// so a caught-up writer pays one request per Update and a long log is read in parallel.
func (t *Table) Update(ctx context.Context) (int, error) {
	applied, batch := 0, 1
	for {
		next := t.snap.version + 1
		datas := make([][]byte, batch)
		errs := make([]error, batch)
		if batch == 1 {
			datas[0], errs[0] = t.store.Get(ctx, t.logKey(CommitName(next)))
		} else {
			var wg sync.WaitGroup
			for i := range batch {
				wg.Go(func() { datas[i], errs[i] = t.store.Get(ctx, t.logKey(CommitName(next+int64(i)))) })
			}
			wg.Wait()
		}
		for i := range batch {
			if errors.Is(errs[i], fs.ErrNotExist) {
				return applied, nil
			}
			if errs[i] != nil {
				return applied, fmt.Errorf("read log: %w", errs[i])
			}
			v := next + int64(i)
			actions, err := ParseCommit(datas[i])
			if err != nil {
				return applied, fmt.Errorf("read log version %d: %w", v, err)
			}
			if err := t.snap.apply(v, actions); err != nil {
				return applied, fmt.Errorf("read log version %d: %w", v, err)
			}
			applied++
		}
		batch = min(batch*2, readAhead)
	}
}

// Expect makes Create, Update and Commit check that the table has this schema and these partition
// columns (ErrIncompatible otherwise).
func (t *Table) Expect(schema *StructType, partitionColumns []string) {
	t.expectSchema, t.expectPartitions = schema, partitionColumns
}

// check verifies that this writer may append to the table as it is now.
func (t *Table) check() error {
	s := t.snap
	if s.version < 0 {
		return ErrNoTable
	}
	if err := s.protocol.Supported(); err != nil {
		return fmt.Errorf("%w: %v", ErrIncompatible, err)
	}
	for _, f := range s.schema.Fields {
		if _, ok := f.Metadata["delta.invariants"]; ok {
			return fmt.Errorf("%w: column %s has an invariant, which this writer does not enforce", ErrIncompatible, f.Name)
		}
	}
	if t.expectSchema != nil && !t.expectSchema.Equal(s.schema) {
		got, _ := json.Marshal(s.schema)
		want, _ := json.Marshal(t.expectSchema)
		return fmt.Errorf("%w: schema is %s, this writer writes %s", ErrIncompatible, got, want)
	}
	if t.expectSchema != nil && !slices.Equal(t.expectPartitions, s.metadata.PartitionColumns) {
		return fmt.Errorf("%w: partitioned by %v, this writer partitions by %v", ErrIncompatible, s.metadata.PartitionColumns, t.expectPartitions)
	}
	return nil
}

// Create creates the table as version 0 (protocol and metaData) unless it exists. When another writer
// creates it first, Create reads that table instead; either way the table must then pass the
// Expect checks.
func (t *Table) Create(ctx context.Context, protocol Protocol, metadata Metadata) error {
	if t.snap.version < 0 {
		now := t.opts.Now().UnixMilli()
		if metadata.CreatedTime == nil {
			metadata.CreatedTime = &now
		}
		actions := []Action{
			{CommitInfo: &CommitInfo{
				Timestamp: now, Operation: "CREATE TABLE", IsBlindAppend: true, EngineInfo: t.opts.EngineInfo, TxnID: uuid.NewString(),
				OperationParameters: map[string]string{"partitionBy": mustJSON(metadata.PartitionColumns), "description": metadata.Description, "isManaged": "false", "properties": "{}"},
			}},
			{Protocol: &protocol},
			{MetaData: &metadata},
		}
		data, err := EncodeCommit(actions)
		if err != nil {
			return fmt.Errorf("create table %s: %w", t.root, err)
		}
		err = t.store.PutIfAbsent(ctx, t.logKey(CommitName(0)), data)
		switch {
		case err == nil:
			if err := t.snap.apply(0, actions); err != nil {
				return fmt.Errorf("create table %s: %w", t.root, err)
			}
		case errors.Is(err, fs.ErrExist): // another writer created it: read theirs
			if _, err := t.Update(ctx); err != nil {
				return fmt.Errorf("create table %s: %w", t.root, err)
			}
		default:
			return fmt.Errorf("create table %s: %w", t.root, err)
		}
	}
	if err := t.check(); err != nil {
		return fmt.Errorf("table %s: %w", t.root, err)
	}
	return nil
}

// Commit is what one Commit call appends.
type Commit struct {
	Actions []Action // add actions and at most one txn (commitInfo is added by Table.Commit)
	// Operation and its parameters and metrics, for commitInfo (what DESCRIBE HISTORY shows).
	Operation string
	Params    map[string]string
	Metrics   map[string]string
}

// Commit writes c as the next version with put-if-absent and returns that version. When another
// writer took the version first it reads the log up to the end and tries the next one, unless the
// log now holds c's txn (same appId, version at least c's): then c already landed (an earlier
// attempt whose outcome looked like a failure) and Commit returns the version that holds it, without
// writing c again. An error other than a conflict leaves the outcome unknown; calling Commit again
// with the same txn settles it.
func (t *Table) Commit(ctx context.Context, c Commit) (int64, error) {
	var txn *Txn
	for i := range c.Actions {
		if c.Actions[i].Txn != nil {
			txn = c.Actions[i].Txn
		}
	}
	for range maxConflicts {
		if err := t.check(); err != nil {
			return -1, fmt.Errorf("commit to %s: %w", t.root, err)
		}
		if txn != nil {
			if st, ok := t.snap.Txn(txn.AppID); ok && st.Version >= txn.Version {
				return st.CommitVersion, nil
			}
		}
		v := t.snap.version + 1
		read := v - 1
		actions := make([]Action, 0, len(c.Actions)+1)
		actions = append(actions, Action{CommitInfo: &CommitInfo{
			Timestamp: t.opts.Now().UnixMilli(), Operation: c.Operation, OperationParameters: c.Params,
			ReadVersion: &read, IsolationLevel: "Serializable", IsBlindAppend: true,
			OperationMetrics: c.Metrics, EngineInfo: t.opts.EngineInfo, TxnID: uuid.NewString(),
		}})
		actions = append(actions, c.Actions...)
		data, err := EncodeCommit(actions)
		if err != nil {
			return -1, fmt.Errorf("commit to %s: %w", t.root, err)
		}
		err = t.store.PutIfAbsent(ctx, t.logKey(CommitName(v)), data)
		if err == nil {
			if err := t.snap.apply(v, actions); err != nil {
				return -1, fmt.Errorf("commit to %s: %w", t.root, err)
			}
			t.maybeCheckpoint(ctx, v)
			return v, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return -1, fmt.Errorf("commit version %d to %s: %w", v, t.root, err)
		}
		t.conflicts++
		if _, err := t.Update(ctx); err != nil {
			return -1, fmt.Errorf("commit to %s after a conflict at version %d: %w", t.root, v, err)
		}
	}
	return -1, fmt.Errorf("commit to %s: gave up after %d conflicts", t.root, maxConflicts)
}

func (t *Table) maybeCheckpoint(ctx context.Context, v int64) {
	if t.opts.CheckpointInterval <= 0 || v == 0 || v%t.opts.CheckpointInterval != 0 {
		return
	}
	if err := t.WriteCheckpoint(ctx); err != nil {
		// The commit stands; readers replay the JSON commits instead of the checkpoint.
		t.opts.Logger.Warn("delta checkpoint failed; the log stays readable, only slower", "table", t.root, "version", v, "err", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Itoa formats n for commitInfo maps, whose values Spark writes as strings.
func Itoa(n int64) string { return strconv.FormatInt(n, 10) }
