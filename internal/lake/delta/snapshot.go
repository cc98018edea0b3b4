package delta

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// TxnState is the latest txn action of one appId, and the table version whose commit held it.
type TxnState struct {
	Version       int64
	LastUpdated   int64 // ms since the epoch; 0 when the action had none
	CommitVersion int64
}

// Snapshot is the state of a table at one version, built by replaying commits in order
// (PROTOCOL.md "Action Reconciliation"): the latest protocol and metaData win, the latest txn
// version per appId wins, and the live files are the adds not removed since.
type Snapshot struct {
	version  int64 // -1: the table does not exist
	protocol *Protocol
	metadata *Metadata
	schema   *StructType
	txns     map[string]TxnState
	files    map[string]*Add    // live files by path (as written in the log); nil: not tracked
	removes  map[string]*Remove // tombstones by path, kept for checkpoints; nil: not tracked
	pvs      map[string]map[string]string
}

// newSnapshot returns the state before version 0. Without trackFiles, adds and removes are skipped:
// a writer needs only the protocol, metadata and txns, and a year of files with their statistics
// would cost hundreds of megabytes.
func newSnapshot(trackFiles bool) *Snapshot {
	s := &Snapshot{version: -1, txns: map[string]TxnState{}}
	if trackFiles {
		s.files, s.removes, s.pvs = map[string]*Add{}, map[string]*Remove{}, map[string]map[string]string{}
	}
	return s
}

// TracksFiles reports whether the snapshot keeps the file list (Files, NumFiles).
func (s *Snapshot) TracksFiles() bool { return s.files != nil }

// untrack drops the file list.
func (s *Snapshot) untrack() { s.files, s.removes, s.pvs = nil, nil, nil }

// Version is the table version of the snapshot; -1 when the table does not exist.
func (s *Snapshot) Version() int64 { return s.version }

// Protocol is the table's protocol action (nil when the table does not exist).
func (s *Snapshot) Protocol() *Protocol { return s.protocol }

// Metadata is the table's metaData action (nil when the table does not exist).
func (s *Snapshot) Metadata() *Metadata { return s.metadata }

// Schema is the parsed Metadata().SchemaString.
func (s *Snapshot) Schema() *StructType { return s.schema }

// Txn returns the latest txn of appID.
func (s *Snapshot) Txn(appID string) (TxnState, bool) {
	t, ok := s.txns[appID]
	return t, ok
}

// Txns returns every appId's latest txn.
func (s *Snapshot) Txns() map[string]TxnState { return maps.Clone(s.txns) }

// NumFiles is the number of live data files (0 when files are not tracked).
func (s *Snapshot) NumFiles() int { return len(s.files) }

// Files returns the live data files, sorted by path (none when files are not tracked). The values are
// shared: do not modify them.
func (s *Snapshot) Files() []*Add {
	out := slices.Collect(maps.Values(s.files))
	slices.SortFunc(out, func(a, b *Add) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// apply replays the actions of commit version v onto s.
func (s *Snapshot) apply(v int64, actions []Action) error {
	if v != s.version+1 {
		return fmt.Errorf("%w: commit %d applied to version %d", ErrCorrupt, v, s.version)
	}
	if v == 0 || s.metadata == nil {
		hasMeta, hasProto := false, false
		for i := range actions {
			hasMeta = hasMeta || actions[i].MetaData != nil
			hasProto = hasProto || actions[i].Protocol != nil
		}
		if !hasMeta || !hasProto {
			return fmt.Errorf("%w: version %d starts the table without protocol and metaData", ErrCorrupt, v)
		}
	}
	for i := range actions {
		a := &actions[i]
		switch {
		case a.Protocol != nil:
			s.protocol = a.Protocol
		case a.MetaData != nil:
			schema, err := a.MetaData.Schema()
			if err != nil {
				return fmt.Errorf("%w: version %d: %v", ErrCorrupt, v, err)
			}
			s.metadata, s.schema = a.MetaData, schema
		case a.Txn != nil:
			var lu int64
			if a.Txn.LastUpdated != nil {
				lu = *a.Txn.LastUpdated
			}
			s.txns[a.Txn.AppID] = TxnState{Version: a.Txn.Version, LastUpdated: lu, CommitVersion: v}
		case a.Add != nil && s.files != nil:
			add := *a.Add
			add.PartitionValues = s.intern(add.PartitionValues)
			s.files[add.Path] = &add
			delete(s.removes, add.Path)
		case a.Remove != nil && s.files != nil:
			delete(s.files, a.Remove.Path)
			rm := *a.Remove
			s.removes[rm.Path] = &rm
		}
	}
	s.version = v
	return nil
}

// intern shares one map between files with equal partition values: a table has few partitions and
// many files.
func (s *Snapshot) intern(pv map[string]string) map[string]string {
	if len(pv) == 0 {
		return map[string]string{}
	}
	keys := slices.Sorted(maps.Keys(pv))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(pv[k])
		b.WriteByte(0)
	}
	if m, ok := s.pvs[b.String()]; ok {
		return m
	}
	s.pvs[b.String()] = pv
	return pv
}
