package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"testing"

	"gocloud.dev/blob"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// faultWriter opens a lake of kind k whose store fails as the returned faultStore is set to, and
// a Writer of spec on it.
func faultWriter[T any](t *testing.T, k lakeKind, spec Spec[T], cfg Config) (*Lake, *faultStore, *Writer[T]) {
	t.Helper()
	lk, _ := k.open(t)
	fs := &faultStore{Store: lk.store}
	lk.store = fs
	w, err := NewWriter(context.Background(), lk, spec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lk, fs, w
}

// faultStore injects failures into a lake's store.
type faultStore struct {
	delta.Store
	mu         sync.Mutex
	createErr  error // Create of a data file fails
	commitErr  error // PutIfAbsent of a commit fails without writing
	commitLost error // PutIfAbsent of a commit writes, then fails (the reply was lost)
	creates    int
}

func (f *faultStore) Create(ctx context.Context, key string) (delta.FileWriter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if f.createErr != nil {
		return nil, f.createErr
	}
	return f.Store.Create(ctx, key)
}

// Put fails with createErr for data files (spooled files are stored with Put).
func (f *faultStore) Put(ctx context.Context, key string, data []byte) error {
	f.mu.Lock()
	f.creates++
	err := f.createErr
	f.mu.Unlock()
	if err != nil && strings.HasSuffix(key, ".parquet") && !strings.Contains(key, "_delta_log/") {
		return err
	}
	return f.Store.Put(ctx, key, data)
}

func (f *faultStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	f.mu.Lock()
	commitErr, lost := f.commitErr, f.commitLost
	f.mu.Unlock()
	if !strings.HasSuffix(key, ".json") || strings.HasSuffix(key, "/00000000000000000000.json") {
		return f.Store.PutIfAbsent(ctx, key, data)
	}
	if commitErr != nil {
		return commitErr
	}
	if err := f.Store.PutIfAbsent(ctx, key, data); err != nil {
		return err
	}
	return lost
}

func (f *faultStore) set(fn func(f *faultStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// dataFiles lists every data file under a table's directory, committed or not.
func dataFiles(t *testing.T, lk *Lake, table string) []string {
	t.Helper()
	var out []string
	it := lk.bucket.List(&blob.ListOptions{Prefix: table + "/"})
	for {
		obj, err := it.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(obj.Key, ".parquet") && !strings.Contains(obj.Key, "_delta_log") {
			out = append(out, obj.Key)
		}
	}
}

func TestCommitFailureKeepsRowsAndRetryCommitsOnce(t *testing.T) {
	cases := []struct {
		name       string
		fault      func(f *faultStore)
		wantFiles  int // data files in the bucket after the retry (committed or orphaned)
		retryVer   int64
		logLen     int
		wantErrStr string
	}{
		{name: "disk full writing the data file", fault: func(f *faultStore) { f.createErr = fmt.Errorf("write: %w", syscall.ENOSPC) },
			wantFiles: 1, retryVer: 1, logLen: 2, wantErrStr: "no space left on device"},
		{name: "bucket unreachable at the commit", fault: func(f *faultStore) { f.commitErr = errors.New("dial tcp: connection refused") },
			wantFiles: 1, retryVer: 1, logLen: 2, wantErrStr: "connection refused"},
		{name: "reply lost after the commit landed", fault: func(f *faultStore) { f.commitLost = errors.New("read: connection reset by peer") },
			wantFiles: 1, retryVer: 1, logLen: 2, wantErrStr: "connection reset"},
	}
	for _, k := range lakeKinds {
		for _, c := range cases {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				lk, fs, w := faultWriter(t, k, ReadingsSpec(), testConfig())
				rows := testReadings(500)
				for _, r := range rows {
					w.Add(r)
				}
				fs.set(c.fault)
				if _, err := w.Commit(ctx, "decoder-p0", 99); err == nil || !strings.Contains(err.Error(), c.wantErrStr) {
					t.Fatalf("Commit error = %v, want one mentioning %q", err, c.wantErrStr)
				}
				if n, _, _ := w.Buffered(); n != len(rows) {
					t.Fatalf("after a failed Commit %d rows are buffered, want all %d kept", n, len(rows))
				}
				fs.set(func(f *faultStore) { f.createErr, f.commitErr, f.commitLost = nil, nil, nil })
				v, err := w.Commit(ctx, "decoder-p0", 99)
				if err != nil {
					t.Fatal(err)
				}
				if v != c.retryVer {
					t.Fatalf("retry committed version %d, want %d", v, c.retryVer)
				}
				if n, _, _ := w.Buffered(); n != 0 {
					t.Fatalf("%d rows buffered after the retry", n)
				}
				log := readLog(t, lk, "readings")
				if len(log) != c.logLen {
					t.Fatalf("log has %d versions, want %d", len(log), c.logLen)
				}
				txns := 0
				for _, commit := range log {
					for _, e := range commit {
						if e.Txn != nil {
							txns++
							if e.Txn.AppID != "decoder-p0" || e.Txn.Version != 99 {
								t.Fatalf("txn %+v", *e.Txn)
							}
						}
					}
				}
				if txns != 1 {
					t.Fatalf("the log holds the txn %d times, want once", txns)
				}
				db := duck(t)
				all := scan(localFiles(t, lk, "readings"))
				if got := queryInt(t, db, "SELECT count(*) FROM "+all); got != int64(len(rows)) {
					t.Fatalf("table holds %d rows, want %d", got, len(rows))
				}
				if got := queryInt(t, db, "SELECT count(DISTINCT ingest_id) FROM "+all); got != int64(len(rows)) {
					t.Fatalf("table holds %d distinct rows, want %d", got, len(rows))
				}
				if got := len(dataFiles(t, lk, "readings")); got != c.wantFiles {
					t.Fatalf("%d data files in the bucket, want %d (files are reused by the retry, not rewritten)", got, c.wantFiles)
				}
			})
		}
	}
}

func TestZeroRowCommitHoldsOnlyTxn(t *testing.T) {
	ctx := context.Background()
	lk, _ := lakeKinds[0].open(t)
	w, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := w.Commit(ctx, "decoder-p0", 17); err != nil || v != 1 {
		t.Fatalf("Commit = %d, %v; want version 1", v, err)
	}
	log := readLog(t, lk, "readings")
	kinds := []string{}
	for _, e := range log[1] {
		switch {
		case e.CommitInfo != nil:
			kinds = append(kinds, "commitInfo")
		case e.Txn != nil:
			kinds = append(kinds, fmt.Sprintf("txn %s@%d", e.Txn.AppID, e.Txn.Version))
		default:
			kinds = append(kinds, "other")
		}
	}
	if strings.Join(kinds, ", ") != "commitInfo, txn decoder-p0@17" {
		t.Fatalf("zero-row commit holds %v", kinds)
	}
	// Committing the same txn again is a no-op that returns the version that holds it.
	w.Add(testReadings(1)[0])
	if v, err := w.Commit(ctx, "decoder-p0", 17); err != nil || v != 1 {
		t.Fatalf("repeated Commit = %d, %v; want version 1 again", v, err)
	}
	if n, _, _ := w.Buffered(); n != 0 {
		t.Fatalf("repeated commit kept %d rows", n)
	}
	if got := len(readLog(t, lk, "readings")); got != 2 {
		t.Fatalf("repeated commit wrote a version: log has %d", got)
	}
}

func TestTxnVersionAcrossReopen(t *testing.T) {
	ctx := context.Background()
	_, u := lakeKinds[1].open(t)
	lk1, _ := openLake(t, u)
	w1, err := NewWriter(ctx, lk1, RawSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int64{5, 9, 12} {
		w1.Add(RawRow{IngestID: off, ReceivedAt: day0, Source: "mqtt", Payload: []byte{byte(i)}})
		if _, err := w1.Commit(ctx, "archiver-p0", off); err != nil {
			t.Fatal(err)
		}
	}
	if err := lk1.Close(); err != nil {
		t.Fatal(err)
	}

	lk2, _ := openLake(t, u)
	w2, err := NewWriter(ctx, lk2, RawSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	lk3, _ := openLake(t, u) // another process
	w3, err := NewWriter(ctx, lk3, RawSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		app    string
		before func()
		want   int64
		ok     bool
	}{
		{"reopened", "archiver-p0", nil, 12, true},
		{"never committed", "archiver-p1", nil, 0, false},
		{"committed by another writer since", "archiver-p1", func() {
			w3.Add(RawRow{IngestID: 3, ReceivedAt: day0, Source: "mqtt"})
			if _, err := w3.Commit(ctx, "archiver-p1", 3); err != nil {
				t.Fatal(err)
			}
		}, 3, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			v, ok, err := w2.TxnVersion(ctx, c.app)
			if err != nil || v != c.want || ok != c.ok {
				t.Fatalf("TxnVersion(%s) = %d, %v, %v; want %d, %v", c.app, v, ok, err, c.want, c.ok)
			}
		})
	}
}

func TestWritersRacingOnOneTable(t *testing.T) {
	for _, k := range lakeKinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			lk, u := k.open(t)
			const writers, batches, per = 3, 15, 40
			ws := make([]*Writer[Reading], writers)
			for i := range ws {
				l := lk
				if k.name == "file" { // separate lakes, as separate processes would have
					l, _ = openLake(t, u)
				}
				w, err := NewWriter(ctx, l, ReadingsSpec(), testConfig())
				if err != nil {
					t.Fatal(err)
				}
				ws[i] = w
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i, w := range ws {
				wg.Go(func() {
					for b := range batches {
						for r := range per {
							id := int64(i*1_000_000 + b*per + r)
							w.Add(Reading{Series: &Series{SensorID: fmt.Sprintf("w%d", i), Metric: "m"}, TS: day0 + id, Value: float64(id), ReceivedAt: day0, IngestID: id})
						}
						if _, err := w.Commit(ctx, fmt.Sprintf("decoder-p%d", i), int64(b)); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			log := readLog(t, lk, "readings") // checks versions are contiguous
			if len(log) != 1+writers*batches {
				t.Fatalf("log has %d versions, want %d", len(log), 1+writers*batches)
			}
			next := map[string]int64{}
			for v, c := range log[1:] {
				txns := 0
				for _, e := range c {
					if e.Txn != nil {
						txns++
						if e.Txn.Version != next[e.Txn.AppID] {
							t.Fatalf("version %d: %s@%d, want @%d", v+1, e.Txn.AppID, e.Txn.Version, next[e.Txn.AppID])
						}
						next[e.Txn.AppID]++
					}
				}
				if txns != 1 {
					t.Fatalf("version %d holds %d txns", v+1, txns)
				}
			}
			db := duck(t)
			all := scan(localFiles(t, lk, "readings"))
			if got := queryInt(t, db, "SELECT count(*) FROM "+all); got != writers*batches*per {
				t.Fatalf("%d rows, want %d", got, writers*batches*per)
			}
			if got := queryInt(t, db, "SELECT count(DISTINCT ingest_id) FROM "+all); got != writers*batches*per {
				t.Fatalf("%d distinct rows, want %d", got, writers*batches*per)
			}
		})
	}
}

func TestCreateRace(t *testing.T) {
	ctx := context.Background()
	_, u := lakeKinds[1].open(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		lk, _ := openLake(t, u)
		wg.Go(func() {
			if _, err := NewWriter(ctx, lk, QuarantineSpec(), testConfig()); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	lk, _ := openLake(t, u)
	if got := len(readLog(t, lk, "quarantine")); got != 1 {
		t.Fatalf("%d creators left %d versions, want 1", n, got)
	}
}

func TestIncompatibleTable(t *testing.T) {
	ctx := context.Background()
	lk, _ := lakeKinds[0].open(t)
	if _, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig()); err != nil {
		t.Fatal(err)
	}
	other := QuarantineSpec()
	other.Name = "readings"
	_, err := NewWriter(ctx, lk, other, testConfig())
	if !errors.Is(err, delta.ErrIncompatible) {
		t.Fatalf("NewWriter over a table of another schema: %v, want ErrIncompatible", err)
	}
	if _, err := NewWriter(ctx, lk, Spec[RawRow]{Name: "_bad", Seq: RawSpec().Seq, Size: RawSpec().Size}, testConfig()); err == nil {
		t.Fatal("a table name starting with _ was accepted")
	}
}

var _ = fs.ErrExist
