package query

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/lake/delta"
)

// Table is a Delta table of the lake exposed as a SQL view. Register one with Engine.Register (or
// let the engine discover it: every directory of the lake's root holding a _delta_log/ becomes a
// view of the same name), so later datasets (1-minute aggregates, quality, anomalies) appear in SQL
// without changes here.
type Table struct {
	// Name is the view's name: letters, digits and underscores, not starting with a digit.
	Name string
	// Dir is the Delta table's directory under the lake's root (default: Name).
	Dir string
	// Columns are the view's columns while the Delta table does not exist yet, so the view is there
	// (empty) from the start. Nil: the view appears with the table. Once the table exists its log's
	// schema is used. ColumnsOf derives them from a lake.Spec.
	Columns []ColumnDef
}

// ColumnDef is a view column: its name and DuckDB type.
type ColumnDef struct {
	Name string
	Type string
}

// ColumnsOf returns the columns of the table spec describes: its file schema plus its partition
// columns, as DuckDB types.
func ColumnsOf[T any](spec lake.Spec[T]) []ColumnDef {
	var out []ColumnDef
	for _, f := range spec.FileSchema().Fields() {
		out = append(out, ColumnDef{Name: f.Name(), Type: parquetType(f)})
	}
	if spec.Partitioning >= lake.ByDate {
		out = append(out, ColumnDef{Name: lake.ColumnDate, Type: "DATE"})
	}
	if spec.Partitioning >= lake.ByHour {
		out = append(out, ColumnDef{Name: lake.ColumnHour, Type: "INTEGER"})
	}
	return out
}

func parquetType(n parquet.Node) string {
	if !n.Leaf() {
		if lt := n.Type().LogicalType(); lt != nil && len(n.Fields()) == 1 && len(n.Fields()[0].Fields()) == 1 {
			if _, ok := lt.Value.(*format.ListType); ok {
				return parquetType(n.Fields()[0].Fields()[0]) + "[]"
			}
		}
		return "VARCHAR"
	}
	var lv format.LogicalTypeValue
	if lt := n.Type().LogicalType(); lt != nil {
		lv = lt.Value
	}
	switch n.Type().Kind() {
	case parquet.Boolean:
		return "BOOLEAN"
	case parquet.Int32:
		return "INTEGER"
	case parquet.Int64:
		if _, ok := lv.(*format.TimestampType); ok {
			return "TIMESTAMPTZ"
		}
		return "BIGINT"
	case parquet.Float:
		return "FLOAT"
	case parquet.Double:
		return "DOUBLE"
	case parquet.ByteArray:
		if _, ok := lv.(*format.StringType); ok {
			return "VARCHAR"
		}
		return "BLOB"
	}
	return "VARCHAR"
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (t Table) dir() string {
	if t.Dir != "" {
		return t.Dir
	}
	return t.Name
}

func (t Table) validate() error {
	if !identRE.MatchString(t.Name) {
		return fmt.Errorf("table name %q: want letters, digits and underscores", t.Name)
	}
	d := t.dir()
	if strings.ContainsAny(d, `/\'`) || strings.HasPrefix(d, ".") || strings.HasPrefix(d, "_") {
		return fmt.Errorf("table %s: directory %q: want a plain directory name", t.Name, d)
	}
	return nil
}

// tableState is what the engine knows of one registered table. It is touched only under
// Engine.refreshMu.
type tableState struct {
	spec    Table
	log     *delta.Table // nil until the table exists
	version int64        // log version the view shows (-1: none)
	files   []string     // absolute paths of the live files, as the view reads them
	columns []ColumnDef
	parts   map[string]bool // partition columns
	hot     *hotReadings    // readings only
	defined bool            // the view exists
}

// update reads the table's log up to its end. It reports whether anything changed since the last
// call (a new version, or the table appearing).
func (e *Engine) updateLog(ctx context.Context, ts *tableState) (bool, error) {
	if ts.log == nil {
		t, err := delta.Open(ctx, e.store, ts.spec.dir(), delta.Options{Logger: e.logger, TrackFiles: true})
		if err != nil {
			return false, fmt.Errorf("read log of %s: %w", ts.spec.dir(), err)
		}
		if t.Snapshot().Version() < 0 {
			return false, nil
		}
		ts.log = t
	} else if _, err := ts.log.Update(ctx); err != nil {
		return false, fmt.Errorf("read log of %s: %w", ts.spec.dir(), err)
	}
	snap := ts.log.Snapshot()
	if snap.Version() == ts.version {
		return false, nil
	}
	cols, parts, err := deltaColumns(snap)
	if err != nil {
		return false, fmt.Errorf("table %s: %w", ts.spec.Name, err)
	}
	files := make([]string, 0, snap.NumFiles())
	root := filepath.Join(e.lakeDir, filepath.FromSlash(ts.spec.dir()))
	for _, a := range snap.Files() {
		p, err := delta.UnescapePath(a.Path)
		if err != nil {
			return false, fmt.Errorf("table %s: %w", ts.spec.Name, err)
		}
		files = append(files, filepath.Join(root, filepath.FromSlash(p)))
	}
	ts.columns, ts.parts, ts.files, ts.version = cols, parts, files, snap.Version()
	return true, nil
}

// deltaColumns returns the view columns of a table from its log's schema.
func deltaColumns(snap *delta.Snapshot) ([]ColumnDef, map[string]bool, error) {
	schema := snap.Schema()
	md := snap.Metadata()
	if schema == nil || md == nil {
		return nil, nil, errors.New("the log has no schema")
	}
	parts := map[string]bool{}
	for _, p := range md.PartitionColumns {
		parts[p] = true
	}
	var cols []ColumnDef
	for _, f := range schema.Fields {
		t, err := duckType(f.Type, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		cols = append(cols, ColumnDef{Name: f.Name, Type: t})
	}
	return cols, parts, nil
}

var decimalRE = regexp.MustCompile(`^decimal\((\d{1,2}),\s*(\d{1,2})\)$`)

// duckType maps a Delta type (PROTOCOL.md "Schema Serialization Format") to DuckDB's.
func duckType(t delta.DataType, depth int) (string, error) {
	if depth > 32 {
		return "", errors.New("type nested too deeply")
	}
	switch {
	case t.Array != nil:
		e, err := duckType(t.Array.ElementType, depth+1)
		return e + "[]", err
	case t.Map != nil:
		k, err := duckType(t.Map.KeyType, depth+1)
		if err != nil {
			return "", err
		}
		v, err := duckType(t.Map.ValueType, depth+1)
		return "MAP(" + k + ", " + v + ")", err
	case t.Struct != nil:
		parts := make([]string, 0, len(t.Struct.Fields))
		for _, f := range t.Struct.Fields {
			ft, err := duckType(f.Type, depth+1)
			if err != nil {
				return "", err
			}
			parts = append(parts, quoteIdent(f.Name)+" "+ft)
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")", nil
	}
	switch t.Primitive {
	case delta.TypeString:
		return "VARCHAR", nil
	case delta.TypeLong:
		return "BIGINT", nil
	case delta.TypeInteger:
		return "INTEGER", nil
	case delta.TypeShort:
		return "SMALLINT", nil
	case delta.TypeByte:
		return "TINYINT", nil
	case delta.TypeFloat:
		return "FLOAT", nil
	case delta.TypeDouble:
		return "DOUBLE", nil
	case delta.TypeBoolean:
		return "BOOLEAN", nil
	case delta.TypeBinary:
		return "BLOB", nil
	case delta.TypeDate:
		return "DATE", nil
	case delta.TypeTimestamp:
		return "TIMESTAMPTZ", nil
	case "timestamp_ntz":
		return "TIMESTAMP", nil
	}
	if m := decimalRE.FindStringSubmatch(t.Primitive); m != nil {
		return "DECIMAL(" + m[1] + "," + m[2] + ")", nil
	}
	return "", fmt.Errorf("unsupported Delta type %q", t.Primitive)
}

// viewSQL returns the statement that (re)defines ts's view: its committed files, plus its hot rows.
func viewSQL(ts *tableState) string {
	cols, parts := committedSelect(ts)
	if ts.hot != nil {
		parts = append(parts, "SELECT "+selectList(cols, hotColumnSet)+" FROM "+hotTableName)
	}
	if len(parts) == 0 {
		parts = append(parts, "SELECT "+nullList(cols)+" WHERE false")
	}
	return "CREATE OR REPLACE VIEW " + quoteIdent(ts.spec.Name) + " AS\n" + strings.Join(parts, "\nUNION ALL\n")
}

// rollupViewSQL returns the statement that (re)defines readings_1m: the rows of the readings_1m/
// table merged into one per (sensor_id, metric, minute) (a minute committed in several commits has a
// row in each), plus the minutes of the hot rows the table does not hold yet, so that the view
// reaches the last second as readings does. Which hot rows the table holds is read from its own
// log's txn versions, not from readings/: readings_1m/ commits before readings/, so for a moment it
// is ahead of the hot rows' deletion, and a reading is still counted once.
func rollupViewSQL(ts *tableState, hot *hotReadings) string {
	cols, parts := committedSelect(ts)
	if hot != nil {
		where := ""
		if ts.log != nil {
			if c := hot.committedCond(txnVersions(ts.log.Snapshot())); c != "" {
				where = " WHERE NOT (" + c + ")"
			}
		}
		parts = append(parts, `SELECT sensor_id, metric, time_bucket(INTERVAL 1 MINUTE, ts) AS minute, count(*) AS count,
 sum(value) AS sum, min(value) AS min, max(value) AS max, min(ts) AS first_ts, arg_min(value, ts) AS first,
 max(ts) AS last_ts, arg_max(value, ts) AS last, date FROM `+hotTableName+where+`
 GROUP BY sensor_id, metric, minute, date`)
	}
	if len(parts) == 0 {
		parts = append(parts, "SELECT "+nullList(cols)+" WHERE false")
	}
	return "CREATE OR REPLACE VIEW " + quoteIdent(ts.spec.Name) + ` AS
SELECT sensor_id, metric, minute, sum(count)::BIGINT AS count, sum(sum) / sum(count) AS mean, min(min) AS min,
 max(max) AS max, arg_min(first, first_ts) AS first, arg_max(last, last_ts) AS last, sum(sum) AS sum, date
FROM (` + strings.Join(parts, "\nUNION ALL BY NAME\n") + `)
GROUP BY sensor_id, metric, minute, date`
}

// committedSelect returns ts's view columns and, when it has committed files, the SELECT that reads
// them.
func committedSelect(ts *tableState) ([]ColumnDef, []string) {
	cols := ts.columns
	if len(cols) == 0 {
		cols = ts.spec.Columns
	}
	var parts []string
	if len(ts.files) > 0 {
		parts = append(parts, "SELECT "+selectList(cols, nil)+" FROM "+parquetScan(ts.files, cols, ts.parts))
	}
	return cols, parts
}

// txnVersions returns the txn version of an appId in snap's table (false: none).
func txnVersions(snap *delta.Snapshot) func(appID string) (int64, bool) {
	return func(appID string) (int64, bool) {
		st, ok := snap.Txn(appID)
		return st.Version, ok
	}
}

// selectList names cols; with have set, columns missing from it are NULLs of the column's type.
func selectList(cols []ColumnDef, have map[string]bool) string {
	items := make([]string, len(cols))
	for i, c := range cols {
		if have != nil && !have[c.Name] {
			items[i] = "CAST(NULL AS " + c.Type + ") AS " + quoteIdent(c.Name)
			continue
		}
		items[i] = quoteIdent(c.Name)
	}
	return strings.Join(items, ", ")
}

func nullList(cols []ColumnDef) string {
	items := make([]string, len(cols))
	for i, c := range cols {
		items[i] = "CAST(NULL AS " + c.Type + ") AS " + quoteIdent(c.Name)
	}
	return strings.Join(items, ", ")
}

// parquetScan reads exactly files (never a glob: only committed files are part of a table), with
// the partition columns taken from the hive-style directory names.
func parquetScan(files []string, cols []ColumnDef, parts map[string]bool) string {
	var b strings.Builder
	b.WriteString("read_parquet([")
	for i, f := range files {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quoteString(f))
	}
	b.WriteString("]")
	var hive []string
	for _, c := range cols {
		if parts[c.Name] {
			hive = append(hive, quoteString(c.Name)+": "+quoteString(c.Type))
		}
	}
	if len(hive) > 0 {
		b.WriteString(", hive_partitioning = true, hive_types = {" + strings.Join(hive, ", ") + "}")
	} else {
		b.WriteString(", hive_partitioning = false")
	}
	b.WriteString(")")
	return b.String()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sortedNames returns the registered table names, sorted.
func sortedNames(m map[string]*tableState) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
