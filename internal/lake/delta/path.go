package delta

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// LogDir is the log's directory inside a table (PROTOCOL.md "Delta Log Entries").
const LogDir = "_delta_log/"

// LastCheckpointName is the name of the pointer to the newest checkpoint ("Last Checkpoint File").
const LastCheckpointName = "_last_checkpoint"

// CommitName is the file name of commit version v: 20 zero-padded digits and ".json".
func CommitName(v int64) string { return fmt.Sprintf("%020d.json", v) }

// CheckpointName is the file name of the classic checkpoint of version v ("Classic checkpoint").
func CheckpointName(v int64) string { return fmt.Sprintf("%020d.checkpoint.parquet", v) }

// LogFile is what a name in _delta_log/ is.
type LogFile int

// Kinds of log files this package knows.
const (
	LogOther      LogFile = iota // anything else: temporary files, .crc, multi-part or v2 checkpoints
	LogCommit                    // NNNNNNNNNNNNNNNNNNNN.json
	LogCheckpoint                // NNNNNNNNNNNNNNNNNNNN.checkpoint.parquet
)

// ParseLogName returns what name (a base name in _delta_log/) is and its version.
func ParseLogName(name string) (LogFile, int64) {
	if len(name) < 21 || name[20] != '.' {
		return LogOther, -1
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || v < 0 || strings.ContainsAny(name[:20], "+-") {
		return LogOther, -1
	}
	switch name[20:] {
	case ".json":
		return LogCommit, v
	case ".checkpoint.parquet":
		return LogCheckpoint, v
	}
	return LogOther, -1
}

// EscapePath URI-encodes a relative file path for add.path and remove.path, segment by segment
// (PROTOCOL.md "Add File and Remove File": the path is an RFC 2396 URI).
func EscapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// UnescapePath decodes add.path into a path relative to the table root. Absolute URIs (with a scheme)
// and paths that climb out of the table are refused: sluice only reads files inside its tables.
func UnescapePath(p string) (string, error) {
	if strings.Contains(p, "://") || strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: absolute path %q", ErrCorrupt, p)
	}
	s, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("%w: path %q: %v", ErrCorrupt, p, err)
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return "", fmt.Errorf("%w: path %q is not a plain relative path", ErrCorrupt, p)
		}
	}
	return s, nil
}

// FormatDate serialises a date partition value ("Partition Value Serialization": {year}-{month}-{day}).
func FormatDate(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// StatsTimestamp formats a timestamp statistic: ISO 8601 in UTC, truncated down to milliseconds
// ("Per-file Statistics": timestamp columns are truncated down to milliseconds).
func StatsTimestamp(micros int64) string {
	ms := micros / 1000
	if micros%1000 < 0 {
		ms-- // floor, also before 1970
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}
