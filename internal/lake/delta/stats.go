package delta

import (
	"encoding/json"
	"fmt"
)

// StringStatsPrefix is how many characters of a string column's minimum are kept
// ("Per-file Statistics": string columns are cut off at a fixed prefix length; Delta Spark uses 32).
// A maximum longer than this is left out rather than cut, since a cut maximum is not an upper bound.
const StringStatsPrefix = 32

// Stats are the statistics of one data file (PROTOCOL.md "Per-file Statistics"), stored as JSON text
// in add.stats. Values in MinValues and MaxValues are JSON numbers, strings, or timestamps formatted
// with StatsTimestamp; columns without meaningful bounds (binary, arrays) are absent.
type Stats struct {
	NumRecords int64            `json:"numRecords"`
	MinValues  map[string]any   `json:"minValues,omitempty"`
	MaxValues  map[string]any   `json:"maxValues,omitempty"`
	NullCount  map[string]int64 `json:"nullCount,omitempty"`
}

// JSON renders s as the text of add.stats (keys sorted, so the output is deterministic).
func (s *Stats) JSON() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("stats: %w", err)
	}
	return string(b), nil
}

// ParseStats parses add.stats.
func ParseStats(text string) (*Stats, error) {
	var s Stats
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, fmt.Errorf("%w: stats: %v", ErrCorrupt, err)
	}
	return &s, nil
}
