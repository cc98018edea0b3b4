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
// few allocations instead of a million. Copies stay valid until reset or recycle.
type arena struct {
	chunk []byte
	used  [][]byte // chunks handed out from since the last reset or recycle (chunk among them)
	free  [][]byte // chunks whose copies are gone, handed out again before new ones are made
	size  int64    // bytes handed out since reset
}

const arenaChunk = 1 << 20

func (a *arena) copy(b []byte) []byte {
	if len(b) > arenaChunk/4 {
		a.size += int64(len(b))
		return append([]byte(nil), b...)
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		if n := len(a.free); n > 0 {
			a.chunk, a.free = a.free[n-1][:0], a.free[:n-1]
		} else {
			a.chunk = make([]byte, 0, arenaChunk)
		}
		a.used = append(a.used, a.chunk)
	}
	n := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	a.size += int64(len(b))
	return a.chunk[n : n+len(b) : n+len(b)]
}

// reset forgets the chunks handed out (rows that reference them must be gone, or be a sealed batch's,
// which keeps them alive until it is committed).
func (a *arena) reset() {
	clear(a.used)
	a.chunk, a.used, a.size = nil, a.used[:0], 0
}

// recycle is reset for copies nothing references any more (the archiver's rows once Spool encoded
// them): their chunks are handed out again instead of new ones, which saves a spool cycle's worth of
// allocation (32 MiB at the default lake.row_group_bytes), its zeroing and its page faults.
func (a *arena) recycle() {
	a.free = append(a.free, a.used...)
	a.reset()
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
