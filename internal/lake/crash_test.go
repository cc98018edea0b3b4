package lake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// crashChildEnv, when set to a lake URL, makes the test binary a child that writes readings to that
// lake and dies (exit 7, no cleanup) after the data file is written and before the commit.
const crashChildEnv = "SLUICE_LAKE_CRASH_CHILD"

// crashStore exits the process when a commit (other than version 0) is about to be written.
type crashStore struct{ faultStore }

func (c *crashStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if strings.HasSuffix(key, ".json") && !strings.HasSuffix(key, "/00000000000000000000.json") {
		os.Exit(7)
	}
	return c.Store.PutIfAbsent(ctx, key, data)
}

func crashChild() {
	ctx := context.Background()
	lk, err := Open(ctx, os.Getenv(crashChildEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lk.store = &crashStore{faultStore{Store: lk.store}}
	w, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, r := range testReadings(100) {
		w.Add(r)
	}
	_, err = w.Commit(ctx, "decoder-p0", 99)
	fmt.Fprintln(os.Stderr, "commit returned instead of crashing:", err)
	os.Exit(1)
}

// TestCrashBetweenDataAndCommit kills a writer after its data file is durable and before its commit:
// the file is on disk but not in the table, and the rows are committed once when the work is redone.
func TestCrashBetweenDataAndCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	u := "file://" + filepath.ToSlash(dir)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+u)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("child: %v, want exit 7 at the commit\n%s", err, out)
	}
	orphans, _ := filepath.Glob(filepath.Join(dir, "readings", "date=*", "part-*.parquet"))
	if len(orphans) != 1 {
		t.Fatalf("the child left %d data files, want the 1 written before the crash", len(orphans))
	}

	ctx := context.Background()
	lk, _ := openLake(t, u)
	if got := len(readLog(t, lk, "readings")); got != 1 {
		t.Fatalf("log has %d versions after the crash, want only the creation", got)
	}
	if files := liveFiles(t, readLog(t, lk, "readings")); len(files) != 0 {
		t.Fatalf("the crashed commit's file is visible: %v", files)
	}
	w, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := w.TxnVersion(ctx, "decoder-p0"); ok || err != nil {
		t.Fatalf("TxnVersion after the crash: ok=%v err=%v, want nothing committed", ok, err)
	}
	for _, r := range testReadings(100) {
		w.Add(r)
	}
	if v, err := w.Commit(ctx, "decoder-p0", 99); err != nil || v != 1 {
		t.Fatalf("redo Commit = %d, %v", v, err)
	}
	db := duck(t)
	files := localFiles(t, lk, "readings")
	if len(files) != 1 || files[0] == orphans[0] {
		t.Fatalf("live files %v: want one new file, not the orphan %s", files, orphans[0])
	}
	if got := queryInt(t, db, "SELECT count(*) FROM "+scan(files)); got != 100 {
		t.Fatalf("%d rows after the redo, want 100", got)
	}
}
