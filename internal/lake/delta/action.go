package delta

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Action is one line of a commit file: exactly one of its fields is set (PROTOCOL.md "Actions").
// Unknown actions (cdc, domainMetadata, checkpointMetadata, sidecar, …) parse to an Action with no
// field set and are skipped by readers, as "Protocol Evolution" requires of unrecognised actions.
type Action struct {
	CommitInfo *CommitInfo `json:"commitInfo,omitempty"`
	Protocol   *Protocol   `json:"protocol,omitempty"`
	MetaData   *Metadata   `json:"metaData,omitempty"`
	Txn        *Txn        `json:"txn,omitempty"`
	Add        *Add        `json:"add,omitempty"`
	Remove     *Remove     `json:"remove,omitempty"`
}

// Protocol is the protocol action (PROTOCOL.md "Protocol Evolution").
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Format is metaData.format (PROTOCOL.md "Format Specification").
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata is the metaData action (PROTOCOL.md "Change Metadata").
type Metadata struct {
	ID               string            `json:"id"`
	Name             string            `json:"name,omitempty"`
	Description      string            `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
	Configuration    map[string]string `json:"configuration"`
}

// Schema parses SchemaString.
func (m *Metadata) Schema() (*StructType, error) { return ParseSchema([]byte(m.SchemaString)) }

// Add is the add action (PROTOCOL.md "Add File and Remove File"). Path is URI-encoded relative to the
// table root (see EscapePath); Stats is the JSON text of a Stats value.
type Add struct {
	Path             string            `json:"path"`
	PartitionValues  map[string]string `json:"partitionValues"`
	Size             int64             `json:"size"`
	ModificationTime int64             `json:"modificationTime"`
	DataChange       bool              `json:"dataChange"`
	Stats            string            `json:"stats,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// Remove is the remove action (PROTOCOL.md "Add File and Remove File"). sluice writes none today
// (compaction will); readers apply them.
type Remove struct {
	Path                 string            `json:"path"`
	DeletionTimestamp    *int64            `json:"deletionTimestamp,omitempty"`
	DataChange           bool              `json:"dataChange"`
	ExtendedFileMetadata bool              `json:"extendedFileMetadata,omitempty"`
	PartitionValues      map[string]string `json:"partitionValues,omitempty"`
	Size                 *int64            `json:"size,omitempty"`
}

// Txn is the txn action (PROTOCOL.md "Transaction Identifiers"): the last application version (for
// sluice, the last log offset) the commit holding it covers.
type Txn struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
}

// CommitInfo is the commitInfo action (PROTOCOL.md "Commit Provenance Information"). Its content is
// free-form; these are the fields Spark writes and DESCRIBE HISTORY shows.
type CommitInfo struct {
	Timestamp           int64             `json:"timestamp"`
	Operation           string            `json:"operation"`
	OperationParameters map[string]string `json:"operationParameters,omitempty"`
	ReadVersion         *int64            `json:"readVersion,omitempty"`
	IsolationLevel      string            `json:"isolationLevel,omitempty"`
	IsBlindAppend       bool              `json:"isBlindAppend"`
	OperationMetrics    map[string]string `json:"operationMetrics,omitempty"`
	EngineInfo          string            `json:"engineInfo,omitempty"`
	TxnID               string            `json:"txnId,omitempty"`
}

// MaxCommitSize bounds the size of a commit file a reader accepts (and of one line in it).
const MaxCommitSize = 256 << 20

// ErrCorrupt wraps errors about log content that does not follow the protocol.
var ErrCorrupt = errors.New("delta log corrupt")

// EncodeCommit renders actions as a commit file: one JSON object per line, each line ending in "\n"
// (PROTOCOL.md "Delta Log Entries").
func EncodeCommit(actions []Action) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i := range actions {
		if n := actions[i].count(); n != 1 {
			return nil, fmt.Errorf("encode commit: action %d has %d kinds set, want 1", i, n)
		}
		if err := enc.Encode(&actions[i]); err != nil { // Encode appends the newline
			return nil, fmt.Errorf("encode commit: action %d: %w", i, err)
		}
	}
	return b.Bytes(), nil
}

func (a *Action) count() int {
	n := 0
	for _, set := range []bool{a.CommitInfo != nil, a.Protocol != nil, a.MetaData != nil, a.Txn != nil, a.Add != nil, a.Remove != nil} {
		if set {
			n++
		}
	}
	return n
}

// ParseCommit parses a commit file. Blank lines are skipped; a line that is not a JSON object, or an
// action that lacks a required field, is an error wrapping ErrCorrupt.
func ParseCommit(data []byte) ([]Action, error) {
	if len(data) > MaxCommitSize {
		return nil, fmt.Errorf("%w: commit of %d bytes exceeds %d", ErrCorrupt, len(data), MaxCommitSize)
	}
	var out []Action
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, MaxCommitSize+1)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var a Action
		if err := json.Unmarshal(text, &a); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrCorrupt, line, err)
		}
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrCorrupt, line, err)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return out, nil
}

// validate checks the fields the protocol marks required, for the actions this package applies.
func (a *Action) validate() error {
	if a.count() > 1 {
		return errors.New("more than one action on one line")
	}
	switch {
	case a.Add != nil:
		if a.Add.Path == "" {
			return errors.New("add without path")
		}
		if a.Add.Size < 0 {
			return fmt.Errorf("add %q with negative size", a.Add.Path)
		}
	case a.Remove != nil:
		if a.Remove.Path == "" {
			return errors.New("remove without path")
		}
	case a.Txn != nil:
		if a.Txn.AppID == "" {
			return errors.New("txn without appId")
		}
	case a.MetaData != nil:
		if a.MetaData.ID == "" {
			return errors.New("metaData without id")
		}
		if _, err := a.MetaData.Schema(); err != nil {
			return fmt.Errorf("metaData schemaString: %w", err)
		}
	case a.Protocol != nil:
		if a.Protocol.MinReaderVersion < 1 || a.Protocol.MinWriterVersion < 1 {
			return fmt.Errorf("protocol versions %d/%d", a.Protocol.MinReaderVersion, a.Protocol.MinWriterVersion)
		}
	}
	return nil
}

// Supported reports whether this package may write to a table with protocol p: reader version 1 and
// writer version 2 at most, no table features. Writer version 2 asks writers to respect appendOnly
// (sluice only appends) and column invariants (sluice's schemas have none; see Metadata checks in
// Table).
func (p *Protocol) Supported() error {
	if p.MinReaderVersion > 1 || p.MinWriterVersion > 2 || len(p.ReaderFeatures) > 0 || len(p.WriterFeatures) > 0 {
		return fmt.Errorf("table needs Delta reader version %d, writer version %d (features %s): this writer implements reader 1, writer 2",
			p.MinReaderVersion, p.MinWriterVersion, strings.Join(append(append([]string(nil), p.ReaderFeatures...), p.WriterFeatures...), ","))
	}
	return nil
}
