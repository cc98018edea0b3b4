package lake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCheckpointReadByDuckDB writes a table with a checkpoint every 5 commits and reads the checkpoint
// back with DuckDB: its columns must be the protocol's checkpoint schema (appendix "Checkpoint
// Schema") and its rows the table's state at that version, one action per row.
func TestCheckpointReadByDuckDB(t *testing.T) {
	ctx := context.Background()
	lk, u := lakeKinds[1].open(t)
	cfg := testConfig()
	cfg.CheckpointInterval = 5
	w, err := NewWriter(ctx, lk, ReadingsSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := testReadings(1200)
	for c := range 12 {
		for _, r := range rows[c*100 : (c+1)*100] {
			w.Add(r)
		}
		app := fmt.Sprintf("decoder-p%d", c%2)
		if _, err := w.Commit(ctx, app, int64(c)); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(strings.TrimPrefix(u, "file://"), "readings", "_delta_log")
	last, err := os.ReadFile(filepath.Join(dir, "_last_checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	var lc struct {
		Version, Size, NumOfAddFiles int64
	}
	if err := jsonUnmarshal(string(last), &lc); err != nil || lc.Version != 10 {
		t.Fatalf("_last_checkpoint %s: %v, want version 10", last, err)
	}
	ck := filepath.Join(dir, "00000000000000000010.checkpoint.parquet")
	db := duck(t)
	src := fmt.Sprintf("read_parquet('%s')", ck)
	types := columnTypes(t, db, "SELECT * FROM "+src)
	want := map[string]string{
		"txn":      "STRUCT(appId VARCHAR, \"version\" BIGINT, lastUpdated BIGINT)",
		"add":      "STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags MAP(VARCHAR, VARCHAR))",
		"remove":   "STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT)",
		"metaData": "STRUCT(id VARCHAR, \"name\" VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, \"options\" MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], createdTime BIGINT, \"configuration\" MAP(VARCHAR, VARCHAR))",
		"protocol": "STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER)",
	}
	for col, ty := range want {
		if types[col] != ty {
			t.Errorf("checkpoint column %s is %s,\n want %s", col, types[col], ty)
		}
	}
	if len(types) != len(want) {
		t.Fatalf("checkpoint columns %v", types)
	}
	// One action per row.
	if got := queryInt(t, db, "SELECT count(*) FROM "+src+` WHERE (txn IS NOT NULL)::INT + (add IS NOT NULL)::INT + (remove IS NOT NULL)::INT
		+ ("metaData" IS NOT NULL)::INT + (protocol IS NOT NULL)::INT != 1`); got != 0 {
		t.Fatalf("%d checkpoint rows hold other than one action", got)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM "+src); n != lc.Size {
		t.Fatalf("checkpoint has %d rows, _last_checkpoint says %d", n, lc.Size)
	}
	// The state at version 10: the adds of commits 1..10, the latest txn per appId, protocol, metaData.
	log := readLog(t, lk, "readings")
	wantFiles := liveFiles(t, log[:11])
	var gotFiles []string
	r, err := db.Query("SELECT add.path, add.partitionValues['date'], add.size, add.dataChange, add.stats FROM " + src + " WHERE add IS NOT NULL ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var path, date, stats string
		var size int64
		var dataChange bool
		if err := r.Scan(&path, &date, &size, &dataChange, &stats); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(path, "date="+date+"/") || size <= 0 || !dataChange || !strings.Contains(stats, `"numRecords":100`) {
			t.Fatalf("checkpoint add %s %s %d %v %s", path, date, size, dataChange, stats)
		}
		gotFiles = append(gotFiles, path)
	}
	r.Close()
	if !slices.Equal(gotFiles, wantFiles) || lc.NumOfAddFiles != int64(len(wantFiles)) {
		t.Fatalf("checkpoint adds %v,\n want the live files at version 10 %v", gotFiles, wantFiles)
	}
	txns := map[string]int64{}
	r, err = db.Query("SELECT txn.appId, txn.version FROM " + src + " WHERE txn IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var app string
		var v int64
		if err := r.Scan(&app, &v); err != nil {
			t.Fatal(err)
		}
		txns[app] = v
	}
	r.Close()
	if fmt.Sprint(txns) != "map[decoder-p0:8 decoder-p1:9]" {
		t.Fatalf("checkpoint txns %v, want decoder-p0:8 decoder-p1:9", txns)
	}
	var reader, writer int64
	var schema, parts string
	if err := db.QueryRow(`SELECT protocol.minReaderVersion, protocol.minWriterVersion FROM `+src+` WHERE protocol IS NOT NULL`).Scan(&reader, &writer); err != nil || reader != 1 || writer != 2 {
		t.Fatalf("checkpoint protocol %d/%d %v", reader, writer, err)
	}
	if err := db.QueryRow(`SELECT "metaData".schemaString, array_to_string("metaData".partitionColumns, ',') FROM `+src+` WHERE "metaData" IS NOT NULL`).Scan(&schema, &parts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(schema, `"name":"sensor_id","type":"string"`) || parts != "date" {
		t.Fatalf("checkpoint metaData: %s, partitions %s", schema, parts)
	}

	// A writer opening the table now starts from the checkpoint and still knows every txn.
	for v := 0; v <= 10; v++ {
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("%020d.json", v))); err != nil {
			t.Fatal(err)
		}
	}
	lk2, _ := openLake(t, u)
	w2, err := NewWriter(ctx, lk2, ReadingsSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := w2.TxnVersion(ctx, "decoder-p1"); err != nil || !ok || v != 11 {
		t.Fatalf("TxnVersion from the checkpoint = %d, %v, %v; want 11", v, ok, err)
	}
	files, v, err := lk2.Files(ctx, "readings")
	if err != nil || v != 12 || len(files) != 12 {
		t.Fatalf("Files from the checkpoint = %d files at version %d, %v; want 12 at 12", len(files), v, err)
	}
}
