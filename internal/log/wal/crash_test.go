package wal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

// TestCrashSIGKILL runs this test binary as a child that appends from 4 goroutines and prints every
// acknowledged offset and value, SIGKILLs it mid-stream, restarts it on the same directory, several
// times; then every acknowledged record must be there with its offset, offsets contiguous from 0, and
// each writer's records in its order.
func TestCrashSIGKILL(t *testing.T) {
	if dir := os.Getenv("WAL_CRASH_CHILD"); dir != "" {
		crashChild(t, dir, os.Getenv("WAL_CRASH_GEN"))
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	acked := map[int64]string{}
	const kills = 6
	for gen := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSIGKILL$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WAL_CRASH_CHILD="+dir, "WAL_CRASH_GEN="+strconv.Itoa(gen))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 500 + rng.IntN(3000)
		n := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				continue // test framework output
			}
			off, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			if prev, ok := acked[off]; ok {
				t.Fatalf("offset %d acknowledged twice: %q (earlier run) and %q", off, prev, f[2])
			}
			acked[off] = f[2]
			if n++; n == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		if n < killAt {
			t.Fatalf("child %d ended after %d acks, before the kill at %d: %v\n%s", gen, n, killAt, err, stderr.Bytes())
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child %d was not killed: %v\n%s", gen, err, stderr.Bytes())
		}
		t.Logf("run %d: killed after %d acknowledged appends", gen, n)
	}

	l := openT(t, testConfig(dir, 64<<10))
	defer l.Close()
	got := readAll(t, l)
	type writer struct{ gen, w string }
	nextI := map[writer]int{}
	for i, r := range got {
		if r.off != int64(i) {
			t.Fatalf("record %d has offset %d: offsets not contiguous", i, r.off)
		}
		if want, ok := acked[r.off]; ok && want != r.val {
			t.Fatalf("offset %d holds %q, acknowledged as %q", r.off, r.val, want)
		}
		f := strings.Split(r.val, "-")
		if len(f) != 3 {
			t.Fatalf("offset %d holds %q", r.off, r.val)
		}
		key := writer{f[0], f[1]}
		if idx, err := strconv.Atoi(strings.TrimPrefix(f[2], "i")); err != nil || idx != nextI[key] {
			t.Fatalf("offset %d: %s wrote entry %d, want %d (order lost)", r.off, key, idx, nextI[key])
		}
		nextI[key]++
	}
	for off := range acked {
		if off >= int64(len(got)) {
			t.Fatalf("acknowledged offset %d lost: the log ends at %d", off, len(got))
		}
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*"+corruptInfix+"*")); len(names) != 0 {
		t.Fatalf("SIGKILL left corruption: %v", names)
	}
	t.Logf("%d records, %d acknowledged, all present in order", len(got), len(acked))
}

// crashChild appends until killed (or 60s), printing "ack <offset> <value>" once each append is durable.
func crashChild(t *testing.T, dir, gen string) {
	cfg := testConfig(dir, 64<<10)
	l := openT(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var out bytes.Buffer
			for i := 0; ctx.Err() == nil; {
				batch := make([]slog2.Entry, 1+rng.IntN(8))
				for k := range batch {
					batch[k] = slog2.Entry{Value: fmt.Appendf(nil, "g%s-w%d-i%07d", gen, w, i+k)}
				}
				first, err := l.append(ctx, batch)
				if err != nil {
					return
				}
				out.Reset()
				for k, e := range batch {
					fmt.Fprintf(&out, "ack %d %s\n", first+int64(k), e.Value)
				}
				os.Stdout.Write(out.Bytes()) // one write (< PIPE_BUF): lines never interleave
				i += len(batch)
			}
		})
	}
	wg.Wait()
	l.Close()
}
