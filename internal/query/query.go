package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Rows is a query's result, read with Next inside the callback given to Query or Prepared.Run.
type Rows struct {
	cols      []Column
	dr        driver.Rows
	buf       []driver.Value
	max       int
	n         int
	truncated bool
}

// Columns returns the result's columns.
func (r *Rows) Columns() []Column { return r.cols }

// Next fills dst (len(Columns())) with the next row's values, converted by Plain, and returns
// io.EOF after the last row, or when the row limit is reached (Truncated then reports true).
func (r *Rows) Next(dst []any) error {
	if r.max > 0 && r.n >= r.max {
		if !r.truncated {
			// One more row tells whether the limit cut the result.
			if err := r.dr.Next(r.buf); err == nil {
				r.truncated = true
			}
		}
		return io.EOF
	}
	if err := r.dr.Next(r.buf); err != nil {
		return err
	}
	for i, v := range r.buf {
		if r.cols[i].Kind == KindJSON && v != nil {
			if b, err := json.Marshal(v); err == nil {
				dst[i] = string(b)
				continue
			}
		}
		dst[i] = Plain(v)
	}
	r.n++
	return nil
}

// Count returns the rows read so far.
func (r *Rows) Count() int { return r.n }

// Truncated reports whether the result had more rows than the limit (known once Next returned io.EOF).
func (r *Rows) Truncated() bool { return r.truncated }

// Request is one query.
type Request struct {
	SQL  string
	Args []any // values for $1, $2, … (or ?)
	// MaxRows overrides the configured row limit when positive and smaller; 0 keeps it.
	MaxRows int
}

// Prepared is a statement checked and prepared on a connection of its own, ready to run. Close it.
type Prepared struct {
	e       *Engine
	q       string
	cols    []Column
	params  []Column
	release func()
	conn    *sql.Conn
	stmt    *duckdb.Stmt
	ctx     context.Context
	cancel  context.CancelFunc
	empty   bool
}

// Columns returns the columns the statement will return.
func (p *Prepared) Columns() []Column { return p.cols }

// Params returns the statement's parameters ($1, $2, …) with the types DuckDB inferred (KindString
// where it could not).
func (p *Prepared) Params() []Column { return p.params }

// Empty reports whether the statement was empty (only blanks and comments).
func (p *Prepared) Empty() bool { return p.empty }

// IsEmpty reports whether q holds no statement (only blanks, semicolons and comments).
func IsEmpty(q string) bool { kw, _ := keyword(q, 0); return kw == "" }

// Prepare checks q against the sandbox and prepares it, holding a query slot and a connection until
// Close. The timeout starts here.
func (e *Engine) Prepare(ctx context.Context, q string) (*Prepared, error) {
	select {
	case <-e.closed:
		return nil, &Error{Kind: ErrUnavailable, Message: "the SQL engine is closed", Offset: -1}
	default:
	}
	_, inner, qerr := checkStatement(q)
	if qerr != nil {
		e.m.queries.WithLabelValues("refused").Inc()
		return nil, qerr
	}
	if inner < 0 {
		return &Prepared{e: e, q: q, empty: true, release: func() {}}, nil
	}
	if e.hot != nil {
		// What the decoder handed over so far, visible to this query. Before DuckDB plans it: the plan
		// takes the hot tables' statistics as they are (a join over hot_series planned before a flush
		// added series would filter out their rows). And before the query's timeout starts: it is
		// ingest's work, which the query only waits for.
		if err := e.hot.sync(); err != nil {
			e.hot.warnFlush(err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	e.m.waiting.Inc()
	select {
	case e.sem <- struct{}{}:
		e.m.waiting.Dec()
	case <-ctx.Done():
		e.m.waiting.Dec()
		cancel()
		e.m.queries.WithLabelValues("timeout").Inc()
		return nil, &Error{Kind: ErrTimeout, Message: fmt.Sprintf("no query slot became free (%d queries run at once; query.max_concurrent)", e.cfg.MaxConcurrent), Offset: -1}
	case <-e.closed:
		e.m.waiting.Dec()
		cancel()
		return nil, &Error{Kind: ErrUnavailable, Message: "the SQL engine is closed", Offset: -1}
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		<-e.sem
		cancel()
		return nil, classify(err, q, ctx)
	}
	p := &Prepared{e: e, q: q, ctx: ctx, cancel: cancel, conn: conn}
	p.release = func() {
		if p.stmt != nil {
			_ = p.stmt.Close()
			p.stmt = nil
		}
		_ = conn.Close()
		<-e.sem
		cancel()
	}
	err = conn.Raw(func(dc any) error {
		c := dc.(*duckdb.Conn)
		if inner > 0 { // EXPLAIN: what it explains must be a query too
			if err := checkPrepared(c, q[inner:], "EXPLAIN"); err != nil {
				return err
			}
		}
		st, err := c.Prepare(q)
		if err != nil {
			return err
		}
		p.stmt = st.(*duckdb.Stmt)
		t, err := p.stmt.StatementType()
		if err != nil {
			return err
		}
		if t != duckdb.STATEMENT_TYPE_SELECT && t != duckdb.STATEMENT_TYPE_EXPLAIN {
			return refused("only queries are allowed: the SQL interface is read-only")
		}
		n, err := p.stmt.ColumnCount()
		if err != nil {
			return err
		}
		for i := range n {
			name, _ := p.stmt.ColumnName(i)
			ti, err := p.stmt.ColumnTypeInfo(i)
			if err != nil {
				p.cols = append(p.cols, Column{Name: name, Type: "UNKNOWN", Kind: KindString})
				continue
			}
			p.cols = append(p.cols, columnOf(name, ti))
		}
		for i := 1; i <= p.stmt.NumInput(); i++ {
			pt, _ := p.stmt.ParamType(i)
			c := Column{Name: fmt.Sprintf("$%d", i), Kind: KindString, Type: "UNKNOWN"}
			if n, ok := typeNames[pt]; ok && pt != duckdb.TYPE_INVALID {
				c.Type = n
				c.Kind = kindOfType(pt, "")
			}
			p.params = append(p.params, c)
		}
		return nil
	})
	if err != nil {
		qe := classify(err, q, ctx)
		if errors.Is(qe, ErrRefused) || strings.Contains(err.Error(), "multi-statement") {
			e.m.queries.WithLabelValues("refused").Inc()
		} else {
			e.m.queries.WithLabelValues("invalid").Inc()
		}
		p.release()
		if strings.Contains(err.Error(), "multi-statement") {
			return nil, refused("send one statement at a time (this query holds several)")
		}
		return nil, qe
	}
	return p, nil
}

// checkPrepared prepares q on c and refuses it unless it is a SELECT.
func checkPrepared(c *duckdb.Conn, q, what string) error {
	st, err := c.Prepare(q)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.(*duckdb.Stmt).StatementType()
	if err != nil {
		return err
	}
	if t != duckdb.STATEMENT_TYPE_SELECT {
		return refused("%s is allowed only around a query (SELECT …)", what)
	}
	return nil
}

// Run executes the prepared statement with args and calls fn with its rows; fn reads them with
// Next. The statement runs in a read-only transaction, on a low-priority thread; the rows are read
// on the caller's goroutine. Run may be called once.
func (p *Prepared) Run(args []any, maxRows int, fn func(*Rows) error) error {
	if p.empty {
		return fn(&Rows{})
	}
	if p.stmt == nil {
		return &Error{Kind: ErrUnavailable, Message: "statement already run or closed", Offset: -1}
	}
	e := p.e
	start := time.Now()
	limit := e.cfg.MaxRows
	if maxRows > 0 && (limit == 0 || maxRows < limit) {
		limit = maxRows
	}
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	result := "ok"
	defer func() {
		e.m.queries.WithLabelValues(result).Inc()
		e.m.querySeconds.Observe(time.Since(start).Seconds())
	}()
	var qe *Error
	rerr := p.conn.Raw(func(dc any) error {
		c := dc.(*duckdb.Conn)
		waited, err := e.ration.wait(p.ctx, e.closed)
		e.m.rationed.Add(waited.Seconds())
		if err != nil {
			qe = &Error{Kind: ErrTimeout, Message: fmt.Sprintf("the query waited %s for its turn and timed out: while readings arrive, queries execute for query.execution_share (%g) of the time", waited.Round(time.Millisecond), e.cfg.ExecutionShare), Offset: -1}
			if p.ctx.Err() == nil {
				qe = &Error{Kind: ErrUnavailable, Message: "the SQL engine is closed", Offset: -1}
			}
			return nil
		}
		if _, err := c.ExecContext(p.ctx, "BEGIN TRANSACTION READ ONLY", nil); err != nil {
			qe = classify(err, p.q, p.ctx)
			return nil
		}
		var dr driver.Rows
		began := time.Now()
		dr, err = p.stmt.QueryContext(p.ctx, named)
		// Charged: executing, and converting the rows (Go code at normal priority as well).
		defer func() { e.ration.charge(time.Since(began), time.Now()) }()
		if err != nil {
			_, _ = c.ExecContext(context.WithoutCancel(p.ctx), "ROLLBACK", nil)
			qe = classify(err, p.q, p.ctx)
			return nil
		}
		rows := &Rows{cols: p.cols, dr: dr, buf: make([]driver.Value, len(p.cols)), max: limit}
		fnErr := fn(rows)
		_ = dr.Close()
		_, _ = c.ExecContext(context.WithoutCancel(p.ctx), "COMMIT", nil)
		e.m.rows.Add(float64(rows.n))
		if fnErr != nil {
			var fe *Error
			if errors.As(fnErr, &fe) || p.ctx.Err() != nil || isDuckErr(fnErr) {
				qe = classify(fnErr, p.q, p.ctx)
				return nil
			}
			return fnErr
		}
		return nil
	})
	if qe != nil {
		result = resultOf(qe)
		return qe
	}
	if rerr != nil {
		result = "error"
	}
	return rerr
}

func isDuckErr(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de)
}

func resultOf(qe *Error) string {
	switch {
	case errors.Is(qe, ErrRefused):
		return "refused"
	case errors.Is(qe, ErrInvalid):
		return "invalid"
	case errors.Is(qe, ErrTimeout):
		return "timeout"
	}
	return "error"
}

// Close releases the statement, its connection and its query slot.
func (p *Prepared) Close() error {
	if p.release != nil {
		p.release()
		p.release = nil
	}
	return nil
}

// Query checks, prepares and runs req, calling fn with the rows. Errors are *Error values.
func (e *Engine) Query(ctx context.Context, req Request, fn func(*Rows) error) error {
	p, err := e.Prepare(ctx, req.SQL)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Run(req.Args, req.MaxRows, fn)
}
