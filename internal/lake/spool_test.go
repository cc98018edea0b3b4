package lake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spoolRows are raw rows of 7 topics across an hour boundary (two partitions), each payload unique.
func spoolRows(n int) []RawRow {
	start := time.Date(2026, 11, 24, 16, 59, 0, 0, time.UTC).UnixMicro()
	rows := make([]RawRow, n)
	for i := range rows {
		topic := fmt.Sprintf("plant/line-%d/sensor-%d", i%3, (i*5)%7)
		rows[i] = RawRow{IngestID: int64(i), ReceivedAt: start + int64(i)*int64(120*time.Second/time.Microsecond)/int64(n),
			Source: "mqtt", Topic: topic, QoS: int32(i % 2),
			Payload: fmt.Appendf(nil, `{"id":"sensor-%d","ts":%d,"value":%d.%02d}`, (i*5)%7, i, i%40, i%100)}
	}
	return rows
}

// TestSpooledBatchCommit: rows spooled in several row groups are committed, after faults, as one
// file per partition holding every row exactly once, byte for byte, each row group in topic order.
func TestSpooledBatchCommit(t *testing.T) {
	cases := []struct {
		name  string
		fault func(f *faultStore)
	}{
		{name: "no fault"},
		{name: "disk full writing the data file", fault: func(f *faultStore) { f.createErr = fmt.Errorf("write: %w", syscall.ENOSPC) }},
		{name: "bucket unreachable at the commit", fault: func(f *faultStore) { f.commitErr = errors.New("connection refused") }},
		{name: "reply lost after the commit landed", fault: func(f *faultStore) { f.commitLost = errors.New("connection reset") }},
	}
	for _, c := range cases {
		for _, k := range lakeKinds {
			t.Run(c.name+"/"+k.name, func(t *testing.T) {
				ctx := context.Background()
				lk, fs, w := faultWriter(t, k, RawSpec(), testConfig())
				const n = 3000
				rows := spoolRows(n)
				var estimate int64
				for i, r := range rows {
					w.Add(r)
					estimate += RawSpec().Size(&rows[i])
					if i == 999 || i == 1999 { // two spools; the last 1000 rows are spooled by Seal
						if err := w.Spool(); err != nil {
							t.Fatal(err)
						}
						if got := w.Unspooled(); got != 0 {
							t.Fatalf("after Spool %d bytes are unspooled, want 0", got)
						}
						buffered, bytes, oldest := w.Buffered()
						if buffered != i+1 || bytes <= 0 || bytes >= estimate || oldest.IsZero() {
							t.Fatalf("after Spool Buffered = %d rows, %d bytes (rows took %d), since %v; want %d rows in fewer bytes", buffered, bytes, estimate, oldest, i+1)
						}
					}
				}
				if _, err := w.Commit(ctx, "archiver-p0", n-1); err == nil || !strings.Contains(err.Error(), "spooled") {
					t.Fatalf("Writer.Commit with spooled rows = %v, want an error saying to use Seal", err)
				}
				if c.fault != nil {
					fs.set(c.fault)
				}
				b := w.Seal()
				if got, _ := b.Len(); got != n {
					t.Fatalf("batch holds %d rows, want %d", got, n)
				}
				if got, bytes, oldest := w.Buffered(); got != 0 || bytes != 0 || !oldest.IsZero() {
					t.Fatalf("after Seal the writer buffers %d rows, %d bytes, since %v; want nothing", got, bytes, oldest)
				}
				if c.fault != nil {
					if _, err := b.Commit(ctx, "archiver-p0", n-1); err == nil {
						t.Fatal("batch Commit succeeded despite the fault")
					}
					fs.set(func(f *faultStore) { f.createErr, f.commitErr, f.commitLost = nil, nil, nil })
				}
				if v, err := b.Commit(ctx, "archiver-p0", n-1); err != nil || v != 1 {
					t.Fatalf("batch Commit = %d, %v; want version 1", v, err)
				}
				// The writer goes on unspooled: its next commit is a sorted file of its own.
				for i := range 10 {
					w.Add(RawRow{IngestID: int64(n + i), ReceivedAt: rows[n-1].ReceivedAt, Source: "mqtt", Topic: "t", Payload: []byte("x")})
				}
				if v, err := w.Commit(ctx, "archiver-p0", n+9); err != nil || v != 2 {
					t.Fatalf("writer Commit = %d, %v; want version 2", v, err)
				}

				files := localFiles(t, lk, "raw")
				if len(files) != 3 {
					t.Fatalf("%d live files, want 3 (one per hour of the spooled batch, one of the last commit)", len(files))
				}
				if got := len(dataFiles(t, lk, "raw")); got != 3 {
					t.Fatalf("%d data files in the bucket, want 3 (a retry reuses what it stored)", got)
				}
				db := duck(t)
				all := scan(files)
				if got := queryInt(t, db, "SELECT count(*) FROM "+all); got != n+10 {
					t.Fatalf("table holds %d rows, want %d", got, n+10)
				}
				if got := queryInt(t, db, "SELECT count(DISTINCT ingest_id) FROM "+all); got != n+10 {
					t.Fatalf("table holds %d distinct ingest ids, want %d", got, n+10)
				}
				for _, i := range []int{0, 999, 1000, 1500, 2999} {
					var topic string
					var payload []byte
					var qos int32
					if err := db.QueryRow("SELECT topic, payload, qos FROM "+all+" WHERE ingest_id = ?", i).Scan(&topic, &payload, &qos); err != nil {
						t.Fatal(err)
					}
					if topic != rows[i].Topic || string(payload) != string(rows[i].Payload) || qos != rows[i].QoS {
						t.Fatalf("row %d read back as %q %q %d, want %q %q %d", i, topic, payload, qos, rows[i].Topic, rows[i].Payload, rows[i].QoS)
					}
				}
				// Per spooled file: a row group per spool that reached its hour, each in topic order.
				groups := 0
				for _, f := range files {
					sizes := rowGroupSizes(t, db, f)
					if queryInt(t, db, "SELECT count(*) FROM "+scanRowNumbers(f)+" WHERE topic = 't'") > 0 {
						continue // the last, unspooled commit
					}
					groups += len(sizes)
					var topics []string
					rs, err := db.Query("SELECT topic FROM " + scanRowNumbers(f) + " ORDER BY file_row_number")
					if err != nil {
						t.Fatal(err)
					}
					for rs.Next() {
						var s string
						if err := rs.Scan(&s); err != nil {
							t.Fatal(err)
						}
						topics = append(topics, s)
					}
					rs.Close()
					lo := 0
					for _, size := range sizes {
						if g := topics[lo : lo+size]; !slices.IsSorted(g) {
							t.Fatalf("%s: a row group of %d rows is not in topic order", f, size)
						}
						lo += size
					}
				}
				// The hour boundary is at the middle of the rows, inside the second spool: hour 16
				// has 2 row groups, hour 17 has 2.
				if groups != 4 {
					t.Fatalf("%d row groups in the spooled files, want 4", groups)
				}
			})
		}
	}
}

// rowGroupSizes returns the rows of each row group of a Parquet file, in file order.
func rowGroupSizes(t *testing.T, db *sql.DB, f string) []int {
	t.Helper()
	rs, err := db.Query("SELECT row_group_id, any_value(row_group_num_rows) FROM parquet_metadata('" + strings.ReplaceAll(f, "'", "''") + "') GROUP BY row_group_id ORDER BY row_group_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var sizes []int
	for rs.Next() {
		var id, n int
		if err := rs.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
	}
	return sizes
}
