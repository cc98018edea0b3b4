package query

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// Sentinels to branch on; every error the engine returns for a query is an *Error wrapping one.
var (
	// ErrRefused: the statement is not allowed (it would write, change a setting, reach outside the
	// lake, or is more than one statement).
	ErrRefused = errors.New("statement refused")
	// ErrInvalid: the query does not parse or bind (syntax, unknown table or column, wrong types).
	ErrInvalid = errors.New("invalid query")
	// ErrTimeout: the query ran longer than its timeout.
	ErrTimeout = errors.New("query timed out")
	// ErrExecution: the query failed while running (a cast, out of memory, a file it could not read).
	ErrExecution = errors.New("query failed")
	// ErrUnavailable: SQL is not available (the engine is closed, or the lake is not on a local disk).
	ErrUnavailable = errors.New("sql unavailable")
)

// Error is a query error: what went wrong, and where in the query text when known.
type Error struct {
	Kind    error  // one of the sentinels above
	Message string // what went wrong, for a person
	// Line and Column (1-based, in characters) point into the query; 0 when unknown.
	Line, Column int
	// Offset is the byte offset of Line:Column in the query; -1 when unknown.
	Offset int
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d, column %d)", e.Message, e.Line, e.Column)
	}
	return e.Message
}

// Unwrap returns the kind, so errors.Is(err, ErrRefused) works.
func (e *Error) Unwrap() error { return e.Kind }

func refused(format string, args ...any) *Error {
	return &Error{Kind: ErrRefused, Message: fmt.Sprintf(format, args...), Offset: -1}
}

// classify turns an error from DuckDB (or the context) into an *Error, locating it in query.
func classify(err error, query string, ctx context.Context) *Error {
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &Error{Kind: ErrTimeout, Message: "the query ran past its timeout and was cancelled", Offset: -1}
		}
		return &Error{Kind: ErrTimeout, Message: "the query was cancelled: " + ctx.Err().Error(), Offset: -1}
	}
	kind := ErrExecution
	msg := err.Error()
	var de *duckdb.Error
	if errors.As(err, &de) {
		msg = de.Msg
		switch de.Type {
		case duckdb.ErrorTypeParser, duckdb.ErrorTypeBinder, duckdb.ErrorTypeCatalog, duckdb.ErrorTypeSyntax,
			duckdb.ErrorTypeParameterNotResolved, duckdb.ErrorTypeParameterNotAllowed, duckdb.ErrorTypeMismatchType:
			kind = ErrInvalid
		case duckdb.ErrorTypePermission:
			kind = ErrRefused
		case duckdb.ErrorTypeInterrupt:
			kind = ErrTimeout
		}
	}
	summary, line, col, off := locate(msg, query)
	if kind == ErrRefused {
		summary += " (queries may read only the lake's files)"
	}
	return &Error{Kind: kind, Message: summary, Line: line, Column: col, Offset: off}
}

// locate splits a DuckDB error message into its first paragraph and the position its
// "LINE n: <context>" / "   ^" block points at, mapped back onto query. DuckDB cuts long lines to a
// window around the position and marks the cuts with "..."; the window's text is found in the
// query's line to recover the column. Returns 0, 0, -1 when the message carries no position.
func locate(msg, query string) (summary string, line, col, offset int) {
	offset = -1
	idx := strings.Index(msg, "\nLINE ")
	if idx < 0 {
		if strings.HasPrefix(msg, "LINE ") {
			idx = 0
		} else {
			return strings.TrimSpace(msg), 0, 0, -1
		}
	}
	summary = strings.TrimSpace(msg[:idx])
	block := strings.TrimLeft(msg[idx:], "\n")
	lines := strings.SplitN(block, "\n", 3)
	if len(lines) < 2 {
		return summary, 0, 0, -1
	}
	head, caret := lines[0], lines[1]
	rest, ok := strings.CutPrefix(head, "LINE ")
	if !ok {
		return summary, 0, 0, -1
	}
	num, text, ok := strings.Cut(rest, ": ")
	if !ok {
		return summary, 0, 0, -1
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return summary, 0, 0, -1
	}
	caretAt := strings.IndexByte(caret, '^')
	prefix := len(head) - len(text) // "LINE n: "
	if caretAt < prefix {
		return summary, 0, 0, -1
	}
	pos := caretAt - prefix // byte position of the caret inside text
	cut := false
	if strings.HasPrefix(text, "...") {
		text, pos, cut = text[3:], pos-3, true
	}
	text = strings.TrimSuffix(text, "...")
	if pos < 0 {
		pos = 0
	}
	qlines := strings.Split(query, "\n")
	if n > len(qlines) {
		return summary, 0, 0, -1
	}
	qline := qlines[n-1]
	start := 0
	if cut {
		start = strings.Index(qline, text)
		if start < 0 {
			return summary, 0, 0, -1
		}
	}
	byteCol := min(start+pos, len(qline))
	offset = byteCol
	for i := 0; i < n-1; i++ {
		offset += len(qlines[i]) + 1
	}
	return summary, n, len([]rune(qline[:byteCol])) + 1, offset
}
