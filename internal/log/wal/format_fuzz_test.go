package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

// fuzzSeeds are the seeds of both fuzzers, as record streams (without the segment header): empty,
// truncated, maximum length field, valid records, valid records plus garbage, a zero-filled tail.
func fuzzSeeds() [][]byte {
	valid := appendRecord(appendRecord(appendRecord(nil, []byte("first")), nil), bytes.Repeat([]byte{0xab}, 300))
	maxLen := binary.LittleEndian.AppendUint32(nil, 0xffffffff)
	maxLen = binary.LittleEndian.AppendUint32(maxLen, 0)
	return [][]byte{
		{},
		valid[:3],
		valid[:recordHeaderSize+2],
		valid[:len(valid)-1],
		maxLen,
		append(bytes.Clone(maxLen), valid...),
		valid,
		append(bytes.Clone(valid), "garbage\x00\xff"...),
		append(bytes.Clone(valid), make([]byte, 64)...),
		append(append(bytes.Clone(valid), 0x01), valid...),
	}
}

// intactPrefix decodes records from the start of b until the first that does not decode.
func intactPrefix(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		p, n, err := decodeRecord(b, len(b)-recordHeaderSize)
		if err != nil {
			break
		}
		out = append(out, p)
		b = b[n:]
	}
	return out
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rest := b
		for len(rest) > 0 {
			p, n, err := decodeRecord(rest, len(rest)-recordHeaderSize)
			switch {
			case errors.Is(err, errShortRead):
				if n <= len(rest) {
					t.Fatalf("short read asks for %d bytes, %d were there", n, len(rest))
				}
				return
			case err != nil:
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("decode error %v is not ErrCorrupt", err)
				}
				return
			}
			if re := appendRecord(nil, p); !bytes.Equal(re, rest[:n]) || cap(p) != len(p) {
				t.Fatalf("record re-encodes as %x, was %x", re, rest[:n])
			}
			rest = rest[n:]
		}
	})
}

// FuzzOpenSegment opens a log whose only segment holds a valid header and then the fuzz input: Open
// must repair it, hand back exactly the intact prefix, and take appends after it.
func FuzzOpenSegment(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, false)
	}
	f.Add([]byte("SLWL\x02\x00\x00\x00"), true)
	f.Fuzz(func(t *testing.T, data []byte, rawHeader bool) {
		dir := memDir(t)
		file := data
		if !rawHeader {
			file = append(appendSegmentHeader(nil, 0), data...)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)), file, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(dir, 1<<20)
		cfg.Fsync = false
		l := openT(t, cfg)
		got := readAll(t, l)
		var want [][]byte
		if !rawHeader {
			want = intactPrefix(data)
		} else if len(file) >= segmentHeaderSize {
			if base, err := decodeSegmentHeader(file); err == nil && base == 0 {
				want = intactPrefix(file[segmentHeaderSize:])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("read %d records, the intact prefix holds %d", len(got), len(want))
		}
		for i, r := range got {
			if r.off != int64(i) || r.val != string(want[i]) {
				t.Fatalf("record %d = @%d %q, want %q", i, r.off, r.val, want[i])
			}
		}
		next, err := l.append(context.Background(), []slog2.Entry{{Value: []byte("after")}})
		if err != nil || next < int64(len(want)) {
			t.Fatalf("append after repair: offset %d, %v", next, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openT(t, cfg)
		defer l.Close()
		for _, kind := range []string{"torn_tail", "corruption", "empty", "missing"} {
			if n := testutil.ToFloat64(l.m.repairs.WithLabelValues(kind)); n != 0 {
				t.Fatalf("second open repaired again (%s)", kind)
			}
		}
		again := readAll(t, l)
		if len(again) != len(got)+1 || again[len(again)-1] != (rec{next, "after"}) {
			t.Fatalf("second open: %d records ending %v, want %d ending at %d", len(again), again[len(again)-1], len(got)+1, next)
		}
	})
}

// memDir returns a temporary directory on tmpfs when there is one: fsync costs nothing there, so the
// file-level fuzzer runs hundreds of times faster; the code paths are the same.
func memDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "walfuzz"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
