package wal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

// TestWriteFailureFileSizeLimit makes the kernel fail a write for real: a child process (this test
// binary again) lowers RLIMIT_FSIZE so that a write crossing the limit stores what fits and fails with
// EFBIG, as a write to a full disk stores what fits and fails with ENOSPC. Go ignores SIGXFSZ.
func TestWriteFailureFileSizeLimit(t *testing.T) {
	if dir := os.Getenv("WAL_FSIZE_CHILD"); dir != "" {
		fileSizeLimitChild(t, dir)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFailureFileSizeLimit$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "WAL_FSIZE_CHILD="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "acked=606") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func fileSizeLimitChild(t *testing.T, dir string) {
	const limit = 64 << 10
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir, 1<<20)
	l := openT(t, cfg)
	ctx := context.Background()
	acked := 0
	var err error
	for ; ; acked++ {
		if err = l.Append(ctx, slog2.Entry{Value: val(acked, recSize)}); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("append past RLIMIT_FSIZE = %v, want EFBIG", err)
	}
	failErr := err
	seg := filepath.Join(dir, segmentName(0))
	// The segment was created as .tmp and renamed: the error names the file as it is now.
	if msg := err.Error(); !strings.Contains(msg, seg+":") || strings.Contains(msg, tmpExt) {
		t.Fatalf("write error %q does not name the segment %s (or names its .tmp)", msg, seg)
	}
	if got, want := fileSize(t, seg), int64(16+acked*108); got != want {
		t.Fatalf("segment is %d bytes after the failed write, want %d", got, want)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	first, err := l.append(ctx, []slog2.Entry{{Value: val(acked, recSize)}})
	if err != nil || first != int64(acked) {
		t.Fatalf("append once the limit is lifted: offset %d, %v; want %d", first, err, acked)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, cfg)
	defer l.Close()
	got := readAll(t, l)
	if len(got) != acked+1 || got[acked] != (rec{int64(acked), string(val(acked, recSize))}) {
		t.Fatalf("after reopen %d records, want %d", len(got), acked+1)
	}
	t.Logf("acked=%d before the write failed with: %v", acked, failErr)
}
