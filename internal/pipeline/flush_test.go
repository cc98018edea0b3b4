package pipeline

import (
	"bytes"
	"testing"
)

// TestArena: copies hold their bytes; after reset new copies come from new chunks (a sealed batch
// still references the old ones), after recycle from the old chunks again; large slices are copied
// on their own.
func TestArena(t *testing.T) {
	var a arena
	first := a.copy([]byte("first"))
	big := a.copy(bytes.Repeat([]byte("x"), arenaChunk/2))
	if string(first) != "first" || len(big) != arenaChunk/2 || a.size != int64(len(first)+len(big)) {
		t.Fatalf("copies %q and %d bytes, size %d", first, len(big), a.size)
	}
	if len(a.used) != 1 {
		t.Fatalf("%d chunks in use, want 1 (the large copy is not from a chunk)", len(a.used))
	}
	a.reset()
	second := a.copy([]byte("second"))
	if string(first) != "first" || &second[0] == &first[0] || a.size != 6 {
		t.Fatalf("after reset: first %q, second from the first's chunk %v, size %d", first, &second[0] == &first[0], a.size)
	}
	a.recycle()
	third := a.copy([]byte("third"))
	if &third[0] != &second[0] || string(third) != "third" || len(a.free) != 0 {
		t.Fatalf("after recycle: third %q from the recycled chunk %v, %d chunks free", third, &third[0] == &second[0], len(a.free))
	}
	// A chunk that is full moves on to the next, a free one first.
	a.recycle()
	fill := bytes.Repeat([]byte("y"), arenaChunk/4)
	for range 4 {
		a.copy(fill)
	}
	next := a.copy([]byte("next"))
	if len(a.used) != 2 || &next[0] == &third[0] || string(next) != "next" {
		t.Fatalf("past a full chunk: %d chunks in use, want 2", len(a.used))
	}
}
