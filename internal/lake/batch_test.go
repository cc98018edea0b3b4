package lake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestSealedBatchCommit: rows sealed into a batch are committed by the batch while the writer buffers
// the next rows; a failed batch commit keeps its rows and files for the retry; a batch committed
// once is not committed again; the writer's own commit follows with the later rows.
func TestSealedBatchCommit(t *testing.T) {
	cases := []struct {
		name      string
		fault     func(f *faultStore)
		failFirst bool // the writer's own Commit failed before Seal: its files go with the batch
		wantFiles int  // data files in the bucket at the end (committed or orphaned)
	}{
		{name: "no fault", wantFiles: 2},
		{name: "disk full writing the data file", fault: func(f *faultStore) { f.createErr = fmt.Errorf("write: %w", syscall.ENOSPC) }, wantFiles: 2},
		{name: "bucket unreachable at the commit", fault: func(f *faultStore) { f.commitErr = errors.New("connection refused") }, wantFiles: 2},
		{name: "reply lost after the commit landed", fault: func(f *faultStore) { f.commitLost = errors.New("connection reset") }, wantFiles: 2},
		{name: "writer commit failed before the seal", fault: func(f *faultStore) { f.commitErr = errors.New("connection refused") }, failFirst: true, wantFiles: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			lk, fs, w := faultWriter(t, lakeKinds[1], ReadingsSpec(), testConfig())
			rows := testReadings(1000)
			for _, r := range rows[:600] {
				w.Add(r)
			}
			if c.fault != nil {
				fs.set(c.fault)
			}
			if c.failFirst {
				if _, err := w.Commit(ctx, "decoder-p0", 599); err == nil {
					t.Fatal("Commit succeeded despite the fault")
				}
			}
			b := w.Seal()
			if n, _ := b.Len(); n != 600 {
				t.Fatalf("batch holds %d rows, want 600", n)
			}
			if n, bytes, oldest := w.Buffered(); n != 0 || bytes != 0 || !oldest.IsZero() {
				t.Fatalf("after Seal the writer buffers %d rows, %d bytes, since %v; want nothing", n, bytes, oldest)
			}
			for _, r := range rows[600:] {
				w.Add(r)
			}
			if c.fault != nil {
				if _, err := b.Commit(ctx, "decoder-p0", 599); err == nil {
					t.Fatal("batch Commit succeeded despite the fault")
				}
				if n, _ := b.Len(); n != 600 {
					t.Fatalf("after a failed Commit the batch holds %d rows, want 600", n)
				}
			}
			fs.set(func(f *faultStore) { f.createErr, f.commitErr, f.commitLost = nil, nil, nil })
			v, err := b.Commit(ctx, "decoder-p0", 599)
			if err != nil || v != 1 {
				t.Fatalf("batch Commit = %d, %v; want version 1", v, err)
			}
			if v, err := b.Commit(ctx, "decoder-p0", 599); err != nil || v != 1 {
				t.Fatalf("batch Commit again = %d, %v; want version 1, nothing done", v, err)
			}
			if n, _, _ := w.Buffered(); n != 400 {
				t.Fatalf("the writer buffers %d rows, want the 400 added after Seal", n)
			}
			if v, err := w.Commit(ctx, "decoder-p0", 999); err != nil || v != 2 {
				t.Fatalf("writer Commit = %d, %v; want version 2", v, err)
			}
			db := duck(t)
			all := scan(localFiles(t, lk, "readings"))
			if got := queryInt(t, db, "SELECT count(DISTINCT ingest_id) FROM "+all); got != 1000 {
				t.Fatalf("table holds %d distinct rows, want 1000", got)
			}
			if got := queryInt(t, db, "SELECT count(*) FROM "+all); got != 1000 {
				t.Fatalf("table holds %d rows, want 1000", got)
			}
			if got := len(dataFiles(t, lk, "readings")); got != c.wantFiles {
				t.Fatalf("%d data files in the bucket, want %d (a retry reuses the files it wrote)", got, c.wantFiles)
			}
			txns := []string{}
			for _, commit := range readLog(t, lk, "readings") {
				for _, e := range commit {
					if e.Txn != nil {
						txns = append(txns, fmt.Sprintf("%s@%d", e.Txn.AppID, e.Txn.Version))
					}
				}
			}
			if strings.Join(txns, " ") != "decoder-p0@599 decoder-p0@999" {
				t.Fatalf("txns in the log: %v", txns)
			}
		})
	}
}

// TestBatchReleasesRows: a committed batch lets its rows go (they may reference the caller's memory,
// such as payload arenas), and the writer's next buffer is a new one.
func TestBatchReleasesRows(t *testing.T) {
	ctx := context.Background()
	lk, _ := lakeKinds[0].open(t)
	w, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	rows := testReadings(300)
	for _, r := range rows {
		w.Add(r)
	}
	b := w.Seal()
	first := &b.rows[0]
	w.Add(rows[0])
	if &w.rows[0] == first {
		t.Fatal("the writer's buffer after Seal is the sealed batch's")
	}
	if cap(w.rows) != 300/4 {
		t.Fatalf("the buffer after Seal starts with capacity %d, want a quarter of the last batch (75)", cap(w.rows))
	}
	if _, err := b.Commit(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	if b.rows != nil {
		t.Fatal("a committed batch still references its rows")
	}
}

// TestBatchPrepare: Prepare writes a batch's files without committing them (the log does not name
// them, the table version stays); Commit then commits exactly those files, writing none; a failed
// Prepare leaves nothing for Commit to trust, which writes the files itself; and Prepare writes
// nothing for a txn the log holds already.
func TestBatchPrepare(t *testing.T) {
	ctx := context.Background()
	for _, failPrepare := range []bool{false, true} {
		t.Run(fmt.Sprintf("prepare fails %v", failPrepare), func(t *testing.T) {
			lk, fs, w := faultWriter(t, lakeKinds[1], ReadingsSpec(), testConfig())
			for _, r := range testReadings(1000) {
				w.Add(r)
			}
			b := w.Seal()
			if failPrepare {
				fs.set(func(f *faultStore) { f.createErr = fmt.Errorf("write: %w", syscall.ENOSPC) })
				if err := b.Prepare(ctx, "decoder-p0", 999); err == nil {
					t.Fatal("Prepare succeeded despite the full disk")
				}
				fs.set(func(f *faultStore) { f.createErr = nil })
			} else if err := b.Prepare(ctx, "decoder-p0", 999); err != nil {
				t.Fatal(err)
			}
			prepared := dataFiles(t, lk, "readings")
			if want := map[bool]int{false: 2, true: 0}[failPrepare]; len(prepared) != want {
				t.Fatalf("after Prepare: %d data files in the bucket, want %d (one per date)", len(prepared), want)
			}
			if got := len(readLog(t, lk, "readings")); got != 1 {
				t.Fatalf("after Prepare the log has %d commits, want 1 (the table's creation)", got)
			}
			if v, err := b.Commit(ctx, "decoder-p0", 999); err != nil || v != 1 {
				t.Fatalf("Commit after Prepare = %d, %v; want version 1", v, err)
			}
			committed := dataFiles(t, lk, "readings")
			if len(committed) != 2 || (!failPrepare && !slices.Equal(committed, prepared)) {
				t.Fatalf("after Commit: data files %v, want the 2 Prepare wrote %v", committed, prepared)
			}
			db := duck(t)
			if got := queryInt(t, db, "SELECT count(DISTINCT ingest_id) FROM "+scan(localFiles(t, lk, "readings"))); got != 1000 {
				t.Fatalf("table holds %d distinct rows, want 1000", got)
			}
			for _, r := range testReadings(10) {
				w.Add(r)
			}
			again := w.Seal()
			if err := again.Prepare(ctx, "decoder-p0", 999); err != nil {
				t.Fatal(err)
			}
			if got := dataFiles(t, lk, "readings"); len(got) != 2 {
				t.Fatalf("Prepare of a txn in the log wrote files: %d in the bucket, want 2", len(got))
			}
		})
	}
}
