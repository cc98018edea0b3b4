package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Checkpoints are classic V1 checkpoints (PROTOCOL.md "Checkpoints", "V1 Spec", "Classic checkpoint",
// and the appendix "Checkpoint Schema"): one Parquet file NNNNNNNNNNNNNNNNNNNN.checkpoint.parquet
// whose rows are the snapshot's actions, one action per row, each action kind a nullable struct
// column. sluice's tables use reader 1 / writer 2, so readerFeatures and writerFeatures are left out
// of the protocol column (allowed: "If a table has neither of the above, then a writer chooses
// whether to write readerFeatures and/or writerFeatures"), stats are written as JSON text
// (delta.checkpoint.writeStatsAsJson, the default) and stats_parsed / partitionValues_parsed are not
// written (writeStatsAsStruct defaults to false). Checkpoints never hold commitInfo.

type ckRow struct {
	Txn      *ckTxn      `parquet:"txn,optional"`
	Add      *ckAdd      `parquet:"add,optional"`
	Remove   *ckRemove   `parquet:"remove,optional"`
	MetaData *ckMetaData `parquet:"metaData,optional"`
	Protocol *ckProtocol `parquet:"protocol,optional"`
}

type ckTxn struct {
	AppID       string `parquet:"appId"`
	Version     int64  `parquet:"version"`
	LastUpdated *int64 `parquet:"lastUpdated,optional"`
}

type ckAdd struct {
	Path             string            `parquet:"path"`
	PartitionValues  map[string]string `parquet:"partitionValues"`
	Size             int64             `parquet:"size"`
	ModificationTime int64             `parquet:"modificationTime"`
	DataChange       bool              `parquet:"dataChange"`
	Stats            *string           `parquet:"stats,optional"`
	Tags             map[string]string `parquet:"tags,optional"`
}

type ckRemove struct {
	Path                 string            `parquet:"path"`
	DeletionTimestamp    *int64            `parquet:"deletionTimestamp,optional"`
	DataChange           bool              `parquet:"dataChange"`
	ExtendedFileMetadata *bool             `parquet:"extendedFileMetadata,optional"`
	PartitionValues      map[string]string `parquet:"partitionValues,optional"`
	Size                 *int64            `parquet:"size,optional"`
}

type ckFormat struct {
	Provider string            `parquet:"provider"`
	Options  map[string]string `parquet:"options,optional"`
}

type ckMetaData struct {
	ID               string            `parquet:"id"`
	Name             *string           `parquet:"name,optional"`
	Description      *string           `parquet:"description,optional"`
	Format           ckFormat          `parquet:"format"`
	SchemaString     string            `parquet:"schemaString"`
	PartitionColumns []string          `parquet:"partitionColumns,list"`
	CreatedTime      *int64            `parquet:"createdTime,optional"`
	Configuration    map[string]string `parquet:"configuration"`
}

type ckProtocol struct {
	MinReaderVersion int32 `parquet:"minReaderVersion"`
	MinWriterVersion int32 `parquet:"minWriterVersion"`
}

// LastCheckpoint is the content of _delta_log/_last_checkpoint ("Last Checkpoint File Schema").
type LastCheckpoint struct {
	Version       int64 `json:"version"`
	Size          int64 `json:"size"`
	SizeInBytes   int64 `json:"sizeInBytes,omitempty"`
	NumOfAddFiles int64 `json:"numOfAddFiles,omitempty"`
}

// ParseLastCheckpoint parses _last_checkpoint.
func ParseLastCheckpoint(data []byte) (*LastCheckpoint, error) {
	var lc LastCheckpoint
	if err := json.Unmarshal(data, &lc); err != nil {
		return nil, fmt.Errorf("%w: _last_checkpoint: %v", ErrCorrupt, err)
	}
	if lc.Version < 0 || lc.Size < 0 {
		return nil, fmt.Errorf("%w: _last_checkpoint: version %d, size %d", ErrCorrupt, lc.Version, lc.Size)
	}
	return &lc, nil
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// checkpointRows renders s as checkpoint rows: protocol, metaData, txns by appId, adds and removes by
// path (a deterministic order).
func checkpointRows(s *Snapshot) []ckRow {
	rows := make([]ckRow, 0, 2+len(s.txns)+len(s.files)+len(s.removes))
	rows = append(rows, ckRow{Protocol: &ckProtocol{MinReaderVersion: int32(s.protocol.MinReaderVersion), MinWriterVersion: int32(s.protocol.MinWriterVersion)}})
	md := s.metadata
	rows = append(rows, ckRow{MetaData: &ckMetaData{
		ID: md.ID, Name: strPtr(md.Name), Description: strPtr(md.Description),
		Format:       ckFormat{Provider: md.Format.Provider, Options: md.Format.Options},
		SchemaString: md.SchemaString, PartitionColumns: md.PartitionColumns, CreatedTime: md.CreatedTime,
		Configuration: md.Configuration,
	}})
	for _, app := range slices.Sorted(maps.Keys(s.txns)) {
		st := s.txns[app]
		txn := &ckTxn{AppID: app, Version: st.Version}
		if st.LastUpdated != 0 {
			lu := st.LastUpdated
			txn.LastUpdated = &lu
		}
		rows = append(rows, ckRow{Txn: txn})
	}
	for _, a := range s.Files() {
		rows = append(rows, ckRow{Add: &ckAdd{
			Path: a.Path, PartitionValues: a.PartitionValues, Size: a.Size, ModificationTime: a.ModificationTime,
			DataChange: a.DataChange, Stats: strPtr(a.Stats), Tags: a.Tags,
		}})
	}
	for _, p := range slices.Sorted(maps.Keys(s.removes)) {
		r := s.removes[p]
		rm := &ckRemove{Path: r.Path, DeletionTimestamp: r.DeletionTimestamp, DataChange: r.DataChange, Size: r.Size}
		if r.ExtendedFileMetadata {
			t := true
			rm.ExtendedFileMetadata, rm.PartitionValues = &t, r.PartitionValues
		}
		rows = append(rows, ckRow{Remove: rm})
	}
	return rows
}

// EncodeCheckpoint renders the snapshot as a checkpoint Parquet file.
func EncodeCheckpoint(s *Snapshot) ([]byte, int64, error) {
	if s.version < 0 {
		return nil, 0, ErrNoTable
	}
	rows := checkpointRows(s)
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[ckRow](&buf, parquet.Compression(&zstd.Codec{}), parquet.DataPageVersion(1))
	if _, err := w.Write(rows); err != nil {
		return nil, 0, fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, 0, fmt.Errorf("encode checkpoint: %w", err)
	}
	return buf.Bytes(), int64(len(rows)), nil
}

// WriteCheckpoint writes a checkpoint of the current snapshot, then points _last_checkpoint at it.
// A reader that finds either missing or unreadable replays the JSON commits instead. When the table
// does not track files, the full state is read from the log for the occasion (from the previous
// checkpoint on) and the checkpoint is of the version that read reaches.
func (t *Table) WriteCheckpoint(ctx context.Context) error {
	s := t.snap
	if !s.TracksFiles() {
		full, err := Open(ctx, t.store, t.root, Options{TrackFiles: true, Logger: t.opts.Logger})
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		s = full.snap
	}
	data, n, err := EncodeCheckpoint(s)
	if err != nil {
		return err
	}
	if err := t.store.Put(ctx, t.logKey(CheckpointName(s.version)), data); err != nil {
		return fmt.Errorf("write checkpoint %d: %w", s.version, err)
	}
	lc, _ := json.Marshal(LastCheckpoint{Version: s.version, Size: n, SizeInBytes: int64(len(data)), NumOfAddFiles: int64(len(s.files))})
	if err := t.store.Put(ctx, t.logKey(LastCheckpointName), lc); err != nil {
		return fmt.Errorf("write %s: %w", LastCheckpointName, err)
	}
	return nil
}

// DecodeCheckpoint reads a checkpoint file into a snapshot at version v.
func DecodeCheckpoint(data []byte, v int64) (s *Snapshot, err error) {
	// parquet-go may panic on a malformed file; a checkpoint is read from storage, so it is input.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: checkpoint %d: %v", ErrCorrupt, v, r)
		}
	}()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint %d: %v", ErrCorrupt, v, err)
	}
	r := parquet.NewGenericReader[ckRow](f)
	defer r.Close()
	s = newSnapshot(true)
	var actions []Action
	buf := make([]ckRow, 256)
	for {
		n, err := r.Read(buf)
		for i := range buf[:n] {
			if a, ok := buf[i].action(); ok {
				actions = append(actions, a)
			}
			buf[i] = ckRow{}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint %d: %v", ErrCorrupt, v, err)
		}
	}
	s.version = v - 1
	if err := s.apply(v, actions); err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", v, err)
	}
	for app, st := range s.txns {
		st.CommitVersion = v // committed at or before v: the checkpoint does not say when
		s.txns[app] = st
	}
	return s, nil
}

func (r *ckRow) action() (Action, bool) {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch {
	case r.Protocol != nil:
		return Action{Protocol: &Protocol{MinReaderVersion: int(r.Protocol.MinReaderVersion), MinWriterVersion: int(r.Protocol.MinWriterVersion)}}, true
	case r.MetaData != nil:
		m := r.MetaData
		return Action{MetaData: &Metadata{
			ID: m.ID, Name: deref(m.Name), Description: deref(m.Description),
			Format:       Format{Provider: m.Format.Provider, Options: nonNil(m.Format.Options)},
			SchemaString: m.SchemaString, PartitionColumns: nonNilSlice(m.PartitionColumns), CreatedTime: m.CreatedTime,
			Configuration: nonNil(m.Configuration),
		}}, true
	case r.Txn != nil:
		return Action{Txn: &Txn{AppID: r.Txn.AppID, Version: r.Txn.Version, LastUpdated: r.Txn.LastUpdated}}, true
	case r.Add != nil:
		a := r.Add
		return Action{Add: &Add{Path: a.Path, PartitionValues: nonNil(a.PartitionValues), Size: a.Size, ModificationTime: a.ModificationTime,
			DataChange: a.DataChange, Stats: deref(a.Stats), Tags: a.Tags}}, true
	case r.Remove != nil:
		x := r.Remove
		rm := &Remove{Path: x.Path, DeletionTimestamp: x.DeletionTimestamp, DataChange: x.DataChange, Size: x.Size, PartitionValues: x.PartitionValues}
		rm.ExtendedFileMetadata = x.ExtendedFileMetadata != nil && *x.ExtendedFileMetadata
		return Action{Remove: rm}, true
	}
	return Action{}, false
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// loadCheckpoint starts the snapshot from the checkpoint _last_checkpoint names, when there is one
// and it reads back; otherwise the snapshot starts empty and Update replays from version 0.
func (t *Table) loadCheckpoint(ctx context.Context) error {
	data, err := t.store.Get(ctx, t.logKey(LastCheckpointName))
	if errors.Is(err, fs.ErrNotExist) {
		return t.loadListedCheckpoint(ctx)
	}
	if err != nil {
		return err
	}
	lc, err := ParseLastCheckpoint(data)
	if err == nil {
		var s *Snapshot
		if s, err = t.readCheckpoint(ctx, lc.Version); err == nil {
			t.setSnapshot(s)
			return nil
		}
	}
	t.opts.Logger.Warn("delta checkpoint unreadable; replaying the log", "table", t.root, "err", err)
	return t.loadListedCheckpoint(ctx)
}

// loadListedCheckpoint is for logs without a usable _last_checkpoint: when version 0 is gone (a log
// cleaned up by another engine), it starts from the newest checkpoint listed in _delta_log/.
func (t *Table) loadListedCheckpoint(ctx context.Context) error {
	if _, err := t.store.Get(ctx, t.logKey(CommitName(0))); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // version 0 is there (or the store failed, which Update will report)
	}
	names, err := t.store.List(ctx, t.root+LogDir)
	if err != nil {
		return err
	}
	newest, commits := int64(-1), 0
	for _, n := range names {
		switch kind, v := ParseLogName(n); kind {
		case LogCheckpoint:
			newest = max(newest, v)
		case LogCommit:
			if v == 0 {
				return nil // version 0 appeared since the Get above: another writer created the table
			}
			commits++
		}
	}
	if newest < 0 {
		if commits > 0 {
			return fmt.Errorf("%w: %s has commits but neither version 0 nor a classic checkpoint", ErrCorrupt, t.root+LogDir)
		}
		return nil // no table
	}
	s, err := t.readCheckpoint(ctx, newest)
	if err != nil {
		return err
	}
	t.setSnapshot(s)
	return nil
}

// setSnapshot starts the table from a checkpoint's snapshot.
func (t *Table) setSnapshot(s *Snapshot) {
	if !t.opts.TrackFiles {
		s.untrack()
	}
	t.snap = s
}

func (t *Table) readCheckpoint(ctx context.Context, v int64) (*Snapshot, error) {
	data, err := t.store.Get(ctx, t.logKey(CheckpointName(v)))
	if err != nil {
		return nil, err
	}
	return DecodeCheckpoint(data, v)
}
