package lake

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// lakeKind names the two buckets tests run on.
type lakeKind struct {
	name string
	open func(t *testing.T) (*Lake, string) // the lake and its URL
}

var lakeKinds = []lakeKind{
	{"mem", func(t *testing.T) (*Lake, string) { return openLake(t, "mem://") }},
	{"file", func(t *testing.T) (*Lake, string) {
		return openLake(t, "file://"+filepath.ToSlash(t.TempDir())+"/lake")
	}},
}

func openLake(t *testing.T, u string) (*Lake, string) {
	t.Helper()
	lk, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	return lk, u
}

func testConfig() Config {
	c := DefaultConfig()
	c.RowGroupRows = 1024
	return c
}

// logEntry is one line of a commit as the tests read it, independently of package delta.
type logEntry struct {
	Add *struct {
		Path            string            `json:"path"`
		PartitionValues map[string]string `json:"partitionValues"`
		Size            int64             `json:"size"`
		DataChange      bool              `json:"dataChange"`
		Stats           string            `json:"stats"`
	} `json:"add"`
	Remove *struct {
		Path string `json:"path"`
	} `json:"remove"`
	Txn *struct {
		AppID   string `json:"appId"`
		Version int64  `json:"version"`
	} `json:"txn"`
	MetaData *struct {
		SchemaString     string   `json:"schemaString"`
		PartitionColumns []string `json:"partitionColumns"`
	} `json:"metaData"`
	Protocol *struct {
		MinReaderVersion int `json:"minReaderVersion"`
		MinWriterVersion int `json:"minWriterVersion"`
	} `json:"protocol"`
	CommitInfo map[string]any `json:"commitInfo"`
}

// readLog reads every commit of table straight from the bucket, in version order, checking that the
// versions are contiguous from 0.
func readLog(t *testing.T, lk *Lake, table string) [][]logEntry {
	t.Helper()
	ctx := context.Background()
	var commits [][]logEntry
	for v := 0; ; v++ {
		data, err := lk.bucket.ReadAll(ctx, fmt.Sprintf("%s/_delta_log/%020d.json", table, v))
		if err != nil {
			break
		}
		var entries []logEntry
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var e logEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s version %d: %v", table, v, err)
			}
			entries = append(entries, e)
		}
		commits = append(commits, entries)
	}
	// No commit beyond a gap.
	names, err := lk.store.List(ctx, table+"/_delta_log/")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if kind, v := delta.ParseLogName(n); kind == delta.LogCommit && v >= int64(len(commits)) {
			t.Fatalf("%s: commit %s exists after a gap at version %d", table, n, len(commits))
		}
	}
	return commits
}

// liveFiles replays adds and removes and returns the live data files' paths (decoded, relative to the
// table).
func liveFiles(t *testing.T, commits [][]logEntry) []string {
	t.Helper()
	live := map[string]bool{}
	for _, c := range commits {
		for _, e := range c {
			if e.Add != nil {
				live[e.Add.Path] = true
			}
			if e.Remove != nil {
				delete(live, e.Remove.Path)
			}
		}
	}
	var out []string
	for p := range live {
		u, err := url.PathUnescape(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// localFiles returns local paths for table's live files: the files themselves for a file:// lake, or
// copies in a temporary directory for mem://.
func localFiles(t *testing.T, lk *Lake, table string) []string {
	t.Helper()
	rel := liveFiles(t, readLog(t, lk, table))
	dir := t.TempDir()
	if u, _ := url.Parse(lk.URL()); u.Scheme == "file" {
		dir = filepath.FromSlash(u.Path)
	}
	var out []string
	for _, r := range rel {
		key := table + "/" + r
		p := filepath.Join(dir, filepath.FromSlash(key))
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			data, err := lk.bucket.ReadAll(context.Background(), key)
			if err != nil {
				t.Fatalf("%s is in the log but not in the bucket: %v", key, err)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, p)
	}
	return out
}

// duck opens an in-memory DuckDB.
func duck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// scan is read_parquet over files, with hive partitions.
func scan(files []string) string {
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	return fmt.Sprintf("read_parquet([%s], hive_partitioning=true)", strings.Join(q, ","))
}

// scanRowNumbers reads one file with its row numbers (file order) in column file_row_number.
func scanRowNumbers(file string) string {
	return fmt.Sprintf("read_parquet('%s', hive_partitioning=true, file_row_number=true)", strings.ReplaceAll(file, "'", "''"))
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func queryInt(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// columnTypes returns DuckDB's column names and types for a query.
func columnTypes(t testing.TB, db *sql.DB, q string) map[string]string {
	t.Helper()
	rows, err := db.Query("DESCRIBE " + q)
	if err != nil {
		t.Fatalf("describe %s: %v", q, err)
	}
	defer rows.Close()
	out := map[string]string{}
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprint(vals[0])] = fmt.Sprint(vals[1])
	}
	return out
}
