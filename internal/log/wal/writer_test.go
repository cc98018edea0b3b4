package wal

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/logtest"
)

// faults injects failures into segment files: a write that stores half its bytes and then fails (what
// a full disk does), an fdatasync that fails, or a segment that cannot be created.
type faults struct {
	mu     sync.Mutex
	write  error
	sync   error
	create error
}

func (f *faults) set(write, sync, create error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write, f.sync, f.create = write, sync, create
}

func (f *faults) get() (write, sync, create error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.write, f.sync, f.create
}

func (f *faults) opener(path string, flag int) (segmentFile, error) {
	if _, _, create := f.get(); create != nil && strings.HasSuffix(path, tmpExt) {
		return nil, &os.PathError{Op: "open", Path: path, Err: create}
	}
	sf, err := openOSFile(path, flag)
	if err != nil {
		return nil, err
	}
	return faultFile{sf, f}, nil
}

type faultFile struct {
	segmentFile
	f *faults
}

func (ff faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err, _, _ := ff.f.get(); err != nil {
		n, _ := ff.segmentFile.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return ff.segmentFile.WriteAt(p, off)
}

func (ff faultFile) Sync() error {
	if _, err, _ := ff.f.get(); err != nil {
		return err
	}
	return ff.segmentFile.Sync()
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestWriteFailureRecovery(t *testing.T) {
	tests := []struct {
		name         string
		before       int // records appended before the fault
		write, sync  error
		create       error
		want         error
		lastSegment  int64 // the segment being written when the fault hits
		durableBytes int64 // its size after the failure
	}{
		{name: "disk full: half-written", before: 10, write: syscall.ENOSPC, want: syscall.ENOSPC, lastSegment: 0, durableBytes: 16 + 10*108},
		{name: "fdatasync fails", before: 10, sync: syscall.EIO, want: syscall.EIO, lastSegment: 0, durableBytes: 16 + 10*108},
		{name: "next segment cannot be created", before: 37, create: syscall.ENOSPC, want: syscall.ENOSPC, lastSegment: 0, durableBytes: 4012},
		{name: "disk full while writing the next segment's header", before: 37, write: syscall.ENOSPC, want: syscall.ENOSPC, lastSegment: 0, durableBytes: 4012},
		{name: "disk full in a fresh segment", before: 38, write: syscall.ENOSPC, want: syscall.ENOSPC, lastSegment: 37, durableBytes: 16 + 108},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir, 4096)
			fs := &faults{}
			logs := &logRecorder{}
			l, err := open(cfg, slog.New(logs), nil, fs.opener)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			appendN(t, l, 0, tc.before, recSize)
			c, err := l.Consume("g", &logtest.Handler{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if tc.before > 0 {
				logtest.ReadN(t, c, tc.before, 5*time.Second)
			}

			fs.set(tc.write, tc.sync, tc.create)
			batch := []slog2.Entry{{Value: val(1000, recSize)}, {Value: val(1001, recSize)}}
			if err := l.Append(ctx, batch...); !errors.Is(err, tc.want) {
				t.Fatalf("Append during the fault = %v, want %v", err, tc.want)
			}
			done := make(chan error, 1)
			l.AppendAsync(batch[:1], func(err error) { done <- err })
			if err := <-done; !errors.Is(err, tc.want) {
				t.Fatalf("AppendAsync during the fault: done(%v), want %v", err, tc.want)
			}
			if got := testutil.ToFloat64(l.m.writeErrors); got != 2 {
				t.Fatalf("write errors counted %v, want 2", got)
			}
			if attrs := logs.find(slog.LevelError, "write failed"); attrs == nil || attrs["segment"].String() == "" || !strings.Contains(attrs["err"].String(), tc.want.Error()) {
				t.Fatalf("no error log line naming the segment and %v: %v", tc.want, attrs)
			}
			if got := fileSize(t, filepath.Join(dir, segmentName(tc.lastSegment))); got != tc.durableBytes {
				t.Fatalf("segment %d is %d bytes after the failure, want %d (cut back to what is durable)", tc.lastSegment, got, tc.durableBytes)
			}
			if tmps, _ := filepath.Glob(filepath.Join(dir, "*"+tmpExt)); len(tmps) != 0 {
				t.Fatalf("unfinished files left: %v", tmps)
			}
			fctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			recs, err := c.Fetch(fctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("a consumer read %d records of failed appends (err %v)", len(recs), err)
			}

			fs.set(nil, nil, nil) // space is back
			first, err := l.append(ctx, []slog2.Entry{{Value: val(tc.before, recSize)}})
			if err != nil || first != int64(tc.before) {
				t.Fatalf("append after recovery: offset %d, %v; want %d", first, err, tc.before)
			}
			if attrs := logs.find(slog.LevelInfo, "writes succeed again"); attrs == nil || attrs["failed_commits"].Int64() != 2 {
				t.Fatalf("no log line saying writes succeed again after 2 failures: %v", attrs)
			}
			if r := logtest.ReadN(t, c, 1, 5*time.Second); r[0].Offset != int64(tc.before) || string(r[0].Value) != string(val(tc.before, recSize)) {
				t.Fatalf("after recovery the consumer read @%d %q", r[0].Offset, r[0].Value)
			}
			c.Close(ctx)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openT(t, cfg)
			defer l.Close()
			got := readAll(t, l)
			if len(got) != tc.before+1 {
				t.Fatalf("after reopen %d records, want %d", len(got), tc.before+1)
			}
			for i, r := range got {
				if r != (rec{int64(i), string(val(i, recSize))}) {
					t.Fatalf("after reopen record %d = %v", i, r)
				}
			}
			if n := testutil.ToFloat64(l.m.repairs.WithLabelValues("torn_tail")); n != 0 {
				t.Fatalf("reopen repaired a torn tail: the failed write was not cut back")
			}
		})
	}
}
