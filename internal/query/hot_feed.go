package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/sluice-project/sluice/internal/lake"
)

// hotFeedFunction is the table function a flush's rows enter hot_rows through.
const hotFeedFunction = "_sluice_hot_feed"

// hotFeed is what the feed function reads: the hot writer fills its columns and runs INSERT INTO
// hot_rows SELECT * FROM _sluice_hot_feed(key), and DuckDB reads them a chunk at a time. The
// function is registered on the hot writer's connection, but DuckDB's catalog lets any connection
// call it, so it only answers the key of the flush under way, drawn at random for each: a query
// that calls it gets an error, never rows.
type hotFeed struct {
	mu   sync.Mutex // guards key, cols while DuckDB binds; the hot writer (writeMu) owns them otherwise
	key  int64      // the flush under way; 0: none
	cols hotColumns
}

// hotColumns are a flush's rows, a slice per hot_rows column.
type hotColumns struct {
	series                   []int32
	ts, receivedAt, ingestID []int64
	value                    []float64
}

// add appends r, in series id.
func (c *hotColumns) add(id int32, r *lake.Reading) {
	c.series = append(c.series, id)
	c.ts = append(c.ts, r.TS)
	c.value = append(c.value, r.Value)
	c.receivedAt = append(c.receivedAt, r.ReceivedAt)
	c.ingestID = append(c.ingestID, r.IngestID)
}

func (c *hotColumns) len() int { return len(c.ts) }

// maxKeptColumns: columns of a larger flush are not kept for the next one.
const maxKeptColumns = 1 << 20

// errNoHotFeed answers a call of the feed function outside a flush.
var errNoHotFeed = errors.New("this function is sluice's own; it has no rows to give a query")

// registerHotFeed registers the feed function on conn (once a DuckDB database).
func registerHotFeed(conn *sql.Conn) (*hotFeed, error) {
	f := &hotFeed{}
	key, err := duckdb.NewTypeInfo(duckdb.TYPE_BIGINT)
	if err != nil {
		return nil, fmt.Errorf("hot feed: %w", err)
	}
	err = duckdb.RegisterTableUDF(conn, hotFeedFunction, duckdb.ChunkTableFunction{
		Config:        duckdb.TableFunctionConfig{Arguments: []duckdb.TypeInfo{key}},
		BindArguments: f.bind,
	})
	if err != nil {
		return nil, fmt.Errorf("hot feed: register %s: %w", hotFeedFunction, err)
	}
	return f, nil
}

// reset empties the columns for a flush of n rows and returns them. Caller holds writeMu.
func (f *hotFeed) reset(n int) *hotColumns {
	c := &f.cols
	if c.len() > maxKeptColumns {
		*c = hotColumns{}
	}
	c.series, c.value = slices.Grow(c.series[:0], n), slices.Grow(c.value[:0], n)
	c.ts, c.receivedAt, c.ingestID = slices.Grow(c.ts[:0], n), slices.Grow(c.receivedAt[:0], n), slices.Grow(c.ingestID[:0], n)
	return c
}

// insert runs stmt (the INSERT … SELECT from the feed) on the columns. Caller holds writeMu.
func (f *hotFeed) insert(stmt *sql.Stmt) error {
	key := rand.Int64N(1<<62) + 1
	f.mu.Lock()
	f.key = key
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.key = 0
		f.mu.Unlock()
	}()
	res, err := stmt.ExecContext(context.Background(), key)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n != int64(f.cols.len()) {
		return fmt.Errorf("hot feed: %d rows inserted of %d", n, f.cols.len())
	}
	return nil
}

func (f *hotFeed) bind(_ map[string]any, args ...any) (duckdb.ChunkTableSource, error) {
	key, _ := args[0].(int64)
	f.mu.Lock()
	defer f.mu.Unlock()
	if key == 0 || key != f.key {
		return nil, errNoHotFeed
	}
	return &hotFeedScan{cols: &f.cols}, nil
}

// hotFeedScan is one INSERT's read of the columns.
type hotFeedScan struct {
	cols *hotColumns
	pos  int
}

var hotFeedColumns = func() []duckdb.ColumnInfo {
	typ := func(t duckdb.Type) duckdb.TypeInfo {
		ti, err := duckdb.NewTypeInfo(t)
		if err != nil {
			panic(err) // a primitive type: cannot fail
		}
		return ti
	}
	i32, i64, f64 := typ(duckdb.TYPE_INTEGER), typ(duckdb.TYPE_BIGINT), typ(duckdb.TYPE_DOUBLE)
	return []duckdb.ColumnInfo{{Name: "series", T: i32}, {Name: "ts", T: i64}, {Name: "value", T: f64},
		{Name: "received_at", T: i64}, {Name: "ingest_id", T: i64}}
}()

func (s *hotFeedScan) ColumnInfos() []duckdb.ColumnInfo { return hotFeedColumns }

func (s *hotFeedScan) Cardinality() *duckdb.CardinalityInfo {
	return &duckdb.CardinalityInfo{Cardinality: uint(s.cols.len()), Exact: true}
}

func (s *hotFeedScan) Init() {}

func (s *hotFeedScan) FillChunk(ch duckdb.DataChunk) error {
	c := s.cols
	n := min(duckdb.GetDataChunkCapacity(), c.len()-s.pos)
	for i := range n {
		j := s.pos + i
		e0 := duckdb.SetChunkValue(ch, 0, i, c.series[j])
		e1 := duckdb.SetChunkValue(ch, 1, i, c.ts[j])
		e2 := duckdb.SetChunkValue(ch, 2, i, c.value[j])
		e3 := duckdb.SetChunkValue(ch, 3, i, c.receivedAt[j])
		e4 := duckdb.SetChunkValue(ch, 4, i, c.ingestID[j])
		if e0 != nil || e1 != nil || e2 != nil || e3 != nil || e4 != nil {
			return fmt.Errorf("hot feed: row %d: %w", j, errors.Join(e0, e1, e2, e3, e4))
		}
	}
	s.pos += n
	return ch.SetSize(n)
}
