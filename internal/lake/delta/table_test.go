package delta

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"

	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

func memStore(t *testing.T) Store {
	b := memblob.OpenBucket(nil)
	t.Cleanup(func() { b.Close() })
	return NewBlobStore(b, "")
}

func fileStore(t *testing.T) Store {
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return NewBlobStore(b, dir)
}

var stores = []struct {
	name string
	open func(t *testing.T) Store
}{{"mem", memStore}, {"file", fileStore}}

func testSchemaStruct(t *testing.T) *StructType {
	s, err := ParseSchema([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, ctx context.Context, st Store, opts Options) *Table {
	t.Helper()
	tb, err := Open(ctx, st, "t", opts)
	if err != nil {
		t.Fatal(err)
	}
	tb.Expect(testSchemaStruct(t), []string{"date"})
	md := testCreate()[2].MetaData
	if err := tb.Create(ctx, Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, *md); err != nil {
		t.Fatal(err)
	}
	return tb
}

func addCommit(path string, app string, v int64) Commit {
	return Commit{Operation: "WRITE", Actions: []Action{
		{Add: &Add{Path: path, PartitionValues: map[string]string{"date": "2026-11-22"}, Size: 1, DataChange: true}},
		{Txn: &Txn{AppID: app, Version: v}},
	}}
}

func TestTableCommitUpdateAndReconcile(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			st := s.open(t)
			a := create(t, ctx, st, Options{TrackFiles: true})
			b, err := Open(ctx, st, "t", Options{TrackFiles: true})
			if err != nil {
				t.Fatal(err)
			}
			b.Expect(testSchemaStruct(t), []string{"date"})
			if b.Snapshot().Version() != 0 {
				t.Fatalf("second table sees version %d", b.Snapshot().Version())
			}
			steps := []struct {
				who    *Table
				commit Commit
				want   int64
			}{
				{a, addCommit("f1", "a", 10), 1},
				{b, addCommit("f2", "b", 3), 2}, // b is behind: conflicts at 1, retries at 2
				{a, addCommit("f3", "a", 11), 3},
				{a, Commit{Operation: "DELETE", Actions: []Action{{Remove: &Remove{Path: "f1"}}}}, 4},
				{b, addCommit("ignored", "a", 11), 3}, // a@11 already landed at version 3: not written again
			}
			for i, s := range steps {
				v, err := s.who.Commit(ctx, s.commit)
				if err != nil || v != s.want {
					t.Fatalf("step %d: Commit = %d, %v; want %d", i, v, err, s.want)
				}
			}
			if b.Conflicts() != 2 { // at version 1 (step 2) and 3 (step 5)
				t.Fatalf("b saw %d conflicts, want 2", b.Conflicts())
			}
			for _, tb := range []*Table{a, b} {
				if _, err := tb.Update(ctx); err != nil {
					t.Fatal(err)
				}
				snap := tb.Snapshot()
				var paths []string
				for _, f := range snap.Files() {
					paths = append(paths, f.Path)
				}
				ta, _ := snap.Txn("a")
				tbx, _ := snap.Txn("b")
				if snap.Version() != 4 || !slices.Equal(paths, []string{"f2", "f3"}) || ta != (TxnState{Version: 11, CommitVersion: 3}) || tbx.Version != 3 {
					t.Fatalf("snapshot at %d: files %v, txns %+v", snap.Version(), paths, snap.Txns())
				}
			}
		})
	}
}

func TestTableCreateRace(t *testing.T) {
	ctx := context.Background()
	st := memStore(t)
	a, _ := Open(ctx, st, "t", Options{})
	b, _ := Open(ctx, st, "t", Options{})
	md := testCreate()[2].MetaData
	if err := a.Create(ctx, Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, *md); err != nil {
		t.Fatal(err)
	}
	other := *md
	other.ID = "another"
	// b did not see a's creation: its put-if-absent fails, it reads a's table instead.
	if err := b.Create(ctx, Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, other); err != nil {
		t.Fatal(err)
	}
	if b.Snapshot().Metadata().ID != md.ID {
		t.Fatalf("b's table id %q, want the winner's %q", b.Snapshot().Metadata().ID, md.ID)
	}
	// A writer expecting another schema refuses the table.
	c, _ := Open(ctx, st, "t", Options{})
	c.Expect(&StructType{Fields: []StructField{{Name: "x", Type: Primitive(TypeLong)}}}, nil)
	if err := c.Create(ctx, Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, other); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("Create with another schema: %v, want ErrIncompatible", err)
	}
	// Commit before Create.
	d, _ := Open(ctx, memStore(t), "t", Options{})
	if _, err := d.Commit(ctx, addCommit("f", "a", 1)); !errors.Is(err, ErrNoTable) {
		t.Fatalf("Commit on no table: %v, want ErrNoTable", err)
	}
}

func TestTableRefusesNewerProtocol(t *testing.T) {
	ctx := context.Background()
	st := memStore(t)
	a := create(t, ctx, st, Options{})
	if _, err := a.Commit(ctx, Commit{Operation: "UPGRADE", Actions: []Action{{Protocol: &Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors"}, WriterFeatures: []string{"deletionVectors"}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, addCommit("f", "a", 1)); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("Commit to a reader-3 table: %v, want ErrIncompatible", err)
	}
}

func TestTableCorruptLog(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		commits map[int64]string
		want    error
	}{
		{"garbage commit", map[int64]string{0: "", 1: "not json\n"}, ErrCorrupt},
		{"first commit without metaData", map[int64]string{0: `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}` + "\n"}, ErrCorrupt},
		{"commits without version 0 or a checkpoint", map[int64]string{3: `{"txn":{"appId":"a","version":1}}` + "\n"}, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := memStore(t)
			for v, text := range c.commits {
				if v == 0 && text == "" {
					data, _ := EncodeCommit(testCreate())
					text = string(data)
				}
				if err := st.PutIfAbsent(ctx, "t/"+LogDir+CommitName(v), []byte(text)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Open(ctx, st, "t", Options{}); !errors.Is(err, c.want) {
				t.Fatalf("Open = %v, want %v", err, c.want)
			}
		})
	}
}

func TestCheckpointRoundTripAndLoad(t *testing.T) {
	for _, c := range []struct {
		name  string
		open  func(t *testing.T) Store
		track bool
	}{{"mem/tracking", memStore, true}, {"mem/not tracking", memStore, false}, {"file/not tracking", fileStore, false}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st := c.open(t)
			a := create(t, ctx, st, Options{CheckpointInterval: 10, TrackFiles: c.track})
			for i := range 25 {
				c := addCommit(fmt.Sprintf("date=2026-11-22/f%02d.parquet", i), fmt.Sprintf("app-%d", i%3), int64(i))
				c.Actions[0].Add.Stats = `{"numRecords":7}`
				if i == 12 {
					c.Actions = append(c.Actions, Action{Remove: &Remove{Path: "date=2026-11-22/f03.parquet", DataChange: true}})
				}
				if _, err := a.Commit(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			lcData, err := st.Get(ctx, "t/"+LogDir+LastCheckpointName)
			if err != nil {
				t.Fatal(err)
			}
			lc, err := ParseLastCheckpoint(lcData)
			if err != nil || lc.Version != 20 || lc.NumOfAddFiles != 19 || lc.Size != 2+3+19+1 {
				t.Fatalf("_last_checkpoint = %+v, %v; want version 20, 19 adds, 25 actions", lc, err)
			}
			for _, v := range []int64{10, 20} {
				if _, err := st.Get(ctx, "t/"+LogDir+CheckpointName(v)); err != nil {
					t.Fatalf("checkpoint %d: %v", v, err)
				}
			}
			if a.Snapshot().TracksFiles() != c.track || (!c.track && a.Snapshot().NumFiles() != 0) {
				t.Fatalf("writer snapshot tracks files: %v, want %v", a.Snapshot().TracksFiles(), c.track)
			}
			ref, err := Open(ctx, st, "t", Options{TrackFiles: true})
			if err != nil {
				t.Fatal(err)
			}
			// Remove the commits the checkpoint covers: the table must still open, from the checkpoint.
			for v := int64(0); v <= 20; v++ {
				if err := st.Delete(ctx, "t/"+LogDir+CommitName(v)); err != nil {
					t.Fatal(err)
				}
			}
			b, err := Open(ctx, st, "t", Options{TrackFiles: true})
			if err != nil {
				t.Fatal(err)
			}
			want, got := ref.Snapshot(), b.Snapshot()
			if got.Version() != 25 || got.NumFiles() != want.NumFiles() || !got.Schema().Equal(want.Schema()) ||
				!slices.Equal(got.Metadata().PartitionColumns, want.Metadata().PartitionColumns) {
				t.Fatalf("from checkpoint: version %d, %d files; want 25, %d", got.Version(), got.NumFiles(), want.NumFiles())
			}
			for i, f := range got.Files() {
				w := want.Files()[i]
				if f.Path != w.Path || f.Stats != w.Stats || f.PartitionValues["date"] != "2026-11-22" {
					t.Fatalf("file %d = %+v, want %+v", i, *f, *w)
				}
			}
			for app, w := range want.Txns() {
				if g, ok := got.Txn(app); !ok || g.Version != w.Version {
					t.Fatalf("txn %s = %+v, want %+v", app, g, w)
				}
			}
			// Without _last_checkpoint, the newest listed checkpoint is used.
			if err := st.Delete(ctx, "t/"+LogDir+LastCheckpointName); err != nil {
				t.Fatal(err)
			}
			d, err := Open(ctx, st, "t", Options{TrackFiles: true})
			if err != nil || d.Snapshot().Version() != 25 || d.Snapshot().NumFiles() != want.NumFiles() {
				t.Fatalf("from a listed checkpoint: %v", err)
			}
		})
	}
}

func TestLocalPutIfAbsentIsExclusive(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- st.PutIfAbsent(ctx, "t/_delta_log/00000000000000000001.json", []byte(fmt.Sprint(i))) }()
	}
	won := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("PutIfAbsent: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers created the same commit, want 1", won)
	}
	names, err := st.List(ctx, "t/_delta_log/")
	if err != nil || len(names) != 1 {
		t.Fatalf("log dir holds %v (%v), want the one commit and no temporary files", names, err)
	}
}
