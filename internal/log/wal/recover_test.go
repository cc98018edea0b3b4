package wal

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

// The corruption tests write 100 records of 100 bytes (108 framed) into 4 KiB segments: 37 records per
// segment, so segments 0 (offsets 0-36), 37 (37-73) and 74 (74-99, the last, 2824 bytes).
const (
	perSeg   = 37
	nRecords = 100
	recSize  = 100
	lastSize = segmentHeaderSize + 26*(recordHeaderSize+recSize)
)

// pos returns the segment file and byte position of record off.
func pos(dir string, off int) (string, int64) {
	base := off / perSeg * perSeg
	return filepath.Join(dir, segmentName(int64(base))), int64(segmentHeaderSize + (off-base)*(recordHeaderSize+recSize))
}

func seq(from, to int) []int64 { // from..to inclusive
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, int64(i))
	}
	return out
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// find returns the attributes of the first record at level whose message contains msg.
func (h *logRecorder) find(level slog.Level, msg string) map[string]slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Level == level && bytes.Contains([]byte(r.Message), []byte(msg)) {
			attrs := map[string]slog.Value{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
			return attrs
		}
	}
	return nil
}

func mutateFile(t *testing.T, path string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverCorruption(t *testing.T) {
	flip := func(off int, at int64) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path, p := pos(dir, off)
			mutateFile(t, path, func(b []byte) []byte { b[p+at] ^= 0x40; return b })
		}
	}
	truncateLast := func(size int64) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path, _ := pos(dir, nRecords-1)
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendLast := func(tail []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path, _ := pos(dir, nRecords-1)
			mutateFile(t, path, func(b []byte) []byte { return append(b, tail...) })
		}
	}
	_, p80 := pos("", 80)
	_, p10 := pos("", 10)
	_, p99 := pos("", 99)
	garbage := bytes.Repeat([]byte("garbage\xff\x13"), 33)

	tests := []struct {
		name      string
		mutate    func(t *testing.T, dir string)
		survivors []int64
		next      int64            // offset the next append gets
		corrupt   map[string]int64 // moved-aside files and their sizes
		repairs   map[string]float64
		logLevel  slog.Level // the repair's log line: level, message, and its offset attribute
		logMsg    string
		logOffset int64
	}{
		{name: "intact", mutate: func(*testing.T, string) {}, survivors: seq(0, 99), next: 100},
		{name: "torn last record: header cut", mutate: truncateLast(p99 + 4), survivors: seq(0, 98), next: 99,
			repairs: map[string]float64{"torn_tail": 1}, logLevel: slog.LevelWarn, logMsg: "torn tail", logOffset: p99},
		{name: "torn last record: payload cut", mutate: truncateLast(p99 + 8 + 50), survivors: seq(0, 98), next: 99,
			repairs: map[string]float64{"torn_tail": 1}, logLevel: slog.LevelWarn, logMsg: "torn tail", logOffset: p99},
		{name: "torn last record: one byte short", mutate: truncateLast(lastSize - 1), survivors: seq(0, 98), next: 99,
			repairs: map[string]float64{"torn_tail": 1}, logLevel: slog.LevelWarn, logMsg: "torn tail", logOffset: p99},
		{name: "header of a record whose payload never came", mutate: appendLast(appendRecord(nil, val(100, recSize))[:recordHeaderSize]),
			survivors: seq(0, 99), next: 100, repairs: map[string]float64{"torn_tail": 1}, logLevel: slog.LevelWarn, logMsg: "torn tail", logOffset: lastSize},
		{name: "garbage appended", mutate: appendLast(garbage), survivors: seq(0, 99), next: 100,
			repairs: map[string]float64{"torn_tail": 1}, logLevel: slog.LevelWarn, logMsg: "torn tail", logOffset: lastSize},
		{name: "zero-filled tail", mutate: appendLast(make([]byte, 4096)), survivors: seq(0, 99), next: 100,
			repairs: map[string]float64{"torn_tail": 1}, logLevel: slog.LevelWarn, logMsg: "torn tail", logOffset: lastSize},
		{name: "last record's CRC flipped: a torn tail", mutate: flip(99, 5), survivors: seq(0, 98), next: 99,
			repairs: map[string]float64{"torn_tail": 1}, logLevel: slog.LevelWarn, logMsg: "torn tail", logOffset: p99},
		{name: "CRC flipped in the middle of the last segment", mutate: flip(80, 5), survivors: seq(0, 79),
			next:    80 + (lastSize-p80+7)/8, // above any offset the moved-aside bytes may have held
			corrupt: map[string]int64{segmentName(74) + ".corrupt-664": lastSize - p80}, repairs: map[string]float64{"corruption": 1},
			logLevel: slog.LevelError, logMsg: "corrupt segment", logOffset: p80},
		{name: "length field broken in the middle of the last segment", mutate: flip(80, 2), survivors: seq(0, 79),
			next:    80 + (lastSize-p80+7)/8,
			corrupt: map[string]int64{segmentName(74) + ".corrupt-664": lastSize - p80}, repairs: map[string]float64{"corruption": 1},
			logLevel: slog.LevelError, logMsg: "corrupt segment", logOffset: p80},
		{name: "payload byte flipped in a sealed segment", mutate: flip(10, 20), survivors: append(seq(0, 9), seq(37, 99)...), next: 100,
			corrupt: map[string]int64{segmentName(0) + ".corrupt-1096": 16 + 37*108 - p10}, repairs: map[string]float64{"corruption": 1},
			logLevel: slog.LevelError, logMsg: "corrupt segment", logOffset: p10},
		{name: "zero-filled tail of a sealed segment", mutate: func(t *testing.T, dir string) {
			mutateFile(t, filepath.Join(dir, segmentName(0)), func(b []byte) []byte { return append(b, make([]byte, 100)...) })
		}, survivors: seq(0, 99), next: 100, corrupt: map[string]int64{segmentName(0) + ".corrupt-4012": 100},
			repairs: map[string]float64{"corruption": 1}, logLevel: slog.LevelError, logMsg: "corrupt segment", logOffset: 4012},
		{name: "bad header of a sealed segment", mutate: func(t *testing.T, dir string) {
			mutateFile(t, filepath.Join(dir, segmentName(37)), func(b []byte) []byte { b[0] = 'X'; return b })
		}, survivors: append(seq(0, 36), seq(74, 99)...), next: 100, corrupt: map[string]int64{segmentName(37) + ".corrupt-0": 4012},
			repairs: map[string]float64{"corruption": 1}, logLevel: slog.LevelError, logMsg: "corrupt segment", logOffset: 0},
		{name: "missing middle segment", mutate: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, segmentName(37)))
		}, survivors: append(seq(0, 36), seq(74, 99)...), next: 100,
			repairs: map[string]float64{"missing": 1}, logLevel: slog.LevelError, logMsg: "missing between segments", logOffset: 4012},
		{name: "missing last segment: offsets continue after the last one left", mutate: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, segmentName(74)))
		}, survivors: seq(0, 73), next: 74},
		{name: "empty last segment file", mutate: truncateLast(0), survivors: seq(0, 73), next: 74,
			repairs: map[string]float64{"empty": 1}, logLevel: slog.LevelWarn, logMsg: "empty segment", logOffset: -1},
		{name: "empty segment file after the last", mutate: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, segmentName(100)), nil, 0o644)
		}, survivors: seq(0, 99), next: 100, repairs: map[string]float64{"empty": 1}, logLevel: slog.LevelWarn, logMsg: "empty segment", logOffset: -1},
		{name: "header-only segment after the last", mutate: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, segmentName(100)), appendSegmentHeader(nil, 100), 0o644)
		}, survivors: seq(0, 99), next: 100},
		{name: "header naming another offset", mutate: func(t *testing.T, dir string) {
			mutateFile(t, filepath.Join(dir, segmentName(74)), func(b []byte) []byte { return append(appendSegmentHeader(nil, 75), b[16:]...) })
		}, survivors: seq(0, 73), next: 74 + (lastSize+7)/8, corrupt: map[string]int64{segmentName(74) + ".corrupt-0": lastSize},
			repairs: map[string]float64{"corruption": 1}, logLevel: slog.LevelError, logMsg: "corrupt segment", logOffset: 0},
		{name: "unfinished segment creation", mutate: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, segmentName(100)+tmpExt), []byte("SLWL"), 0o644)
		}, survivors: seq(0, 99), next: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir, 4096)
			l := openT(t, cfg)
			appendN(t, l, 0, nRecords, recSize)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if files := segmentFiles(t, dir); !slices.Equal(files, []string{segmentName(0), segmentName(37), segmentName(74)}) {
				t.Fatalf("segments before damage: %v", files)
			}
			tc.mutate(t, dir)

			logs := &logRecorder{}
			reg := prometheus.NewRegistry()
			l, err := Open(cfg, slog.New(logs), reg)
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, l)
			var offs []int64
			for _, r := range got {
				offs = append(offs, r.off)
				if r.val != string(val(int(r.off), recSize)) {
					t.Fatalf("record %d holds %q", r.off, r.val)
				}
			}
			if !slices.Equal(offs, tc.survivors) {
				t.Fatalf("surviving offsets %v,\nwant %v", offs, tc.survivors)
			}
			for _, kind := range []string{"torn_tail", "corruption", "missing", "empty"} {
				if got := testutil.ToFloat64(l.m.repairs.WithLabelValues(kind)); got != tc.repairs[kind] {
					t.Errorf("repairs{kind=%q} = %v, want %v", kind, got, tc.repairs[kind])
				}
			}
			if tc.logMsg != "" {
				attrs := logs.find(tc.logLevel, tc.logMsg)
				if attrs == nil {
					t.Errorf("no %s log line containing %q", tc.logLevel, tc.logMsg)
				} else if tc.logOffset >= 0 && (attrs["offset"].Int64() != tc.logOffset || attrs["segment"].String() == "") {
					t.Errorf("log line %q names segment %q offset %v, want offset %d", tc.logMsg, attrs["segment"], attrs["offset"], tc.logOffset)
				}
				if tc.logLevel == slog.LevelError && tc.repairs["corruption"] > 0 {
					var cerr *CorruptionErr
					if err, ok := attrs["err"].Any().(error); !ok || !errors.As(err, &cerr) || cerr.Offset != tc.logOffset || !errors.Is(cerr, ErrCorrupt) {
						t.Errorf("log line carries err %v, want a CorruptionErr at %d", attrs["err"], tc.logOffset)
					}
				}
			}
			corrupt := map[string]int64{}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if bytes.Contains([]byte(e.Name()), []byte(corruptInfix)) || bytes.HasSuffix([]byte(e.Name()), []byte(tmpExt)) {
					info, _ := e.Info()
					corrupt[e.Name()] = info.Size()
				}
			}
			if len(corrupt) != len(tc.corrupt) {
				t.Errorf("moved-aside files %v, want %v", corrupt, tc.corrupt)
			}
			for name, size := range tc.corrupt {
				if corrupt[name] != size {
					t.Errorf("moved-aside %s: %d bytes, want %d (all files: %v)", name, corrupt[name], size, corrupt)
				}
			}
			first, err := l.append(context.Background(), []slog2.Entry{{Value: val(int(tc.next), recSize)}})
			if err != nil || first != tc.next {
				t.Fatalf("next append got offset %d, %v; want %d", first, err, tc.next)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			// A second open finds nothing more to repair and the same records plus the new one.
			reg = prometheus.NewRegistry()
			l, err = Open(cfg, nil, reg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			again := readAll(t, l)
			if len(again) != len(got)+1 || again[len(again)-1].off != tc.next {
				t.Fatalf("second open: %d records ending at %v, want %d ending at %d", len(again), again[len(again)-1], len(got)+1, tc.next)
			}
			for _, kind := range []string{"torn_tail", "corruption", "missing", "empty"} {
				want := 0.0
				if kind == "missing" {
					want = tc.repairs[kind] // a gap no moved-aside part explains is reported at every open
				}
				if got := testutil.ToFloat64(l.m.repairs.WithLabelValues(kind)); got != want {
					t.Errorf("second open: repairs{kind=%q} = %v, want %v", kind, got, want)
				}
			}
		})
	}
}
