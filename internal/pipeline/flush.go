package pipeline

import (
	"time"
)

// FlushPolicy decides when a stage commits: whichever limit is reached first.
type FlushPolicy struct {
	Rows  int           // buffered rows
	Bytes int64         // buffered bytes (estimated)
	Age   time.Duration // since the first uncommitted record was processed
}

// due reports whether output of rows rows and bytes bytes, whose first uncommitted record was
// processed at since (zero: nothing uncommitted), should be committed at now.
func (f FlushPolicy) due(rows int, bytes int64, since, now time.Time) bool {
	if since.IsZero() {
		return false
	}
	return (f.Rows > 0 && rows >= f.Rows) || (f.Bytes > 0 && bytes >= f.Bytes) || now.Sub(since) >= f.Age
}

// arena hands out copies of byte slices from large chunks, so buffering a million payloads costs a
// few allocations instead of a million. Copies stay valid until reset.
type arena struct {
	chunk []byte
	size  int64 // bytes handed out since reset
}

const arenaChunk = 1 << 20

func (a *arena) copy(b []byte) []byte {
	if len(b) > arenaChunk/4 {
		a.size += int64(len(b))
		return append([]byte(nil), b...)
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	n := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	a.size += int64(len(b))
	return a.chunk[n : n+len(b) : n+len(b)]
}

// reset forgets the chunks (rows that reference them must be gone: they are, after a commit).
func (a *arena) reset() {
	a.chunk, a.size = nil, 0
}

// interner returns one shared string per distinct byte sequence, for low-cardinality columns
// (topics, sources). Bounded: past max entries it starts afresh.
type interner struct {
	m   map[string]string
	max int
}

func (in *interner) intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if in.m == nil || len(in.m) >= in.max {
		in.m = make(map[string]string)
	}
	s := string(b)
	in.m[s] = s
	return s
}
