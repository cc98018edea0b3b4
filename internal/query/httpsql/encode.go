package httpsql

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluice-project/sluice/internal/query"
)

// encoder writes one result in one format. begin, row (per row), then end or fail.
type encoder interface {
	begin(cols []query.Column) error
	row(vals []any) error
	end(truncated bool, rows int, elapsed time.Duration) error
	fail(err error) // the query failed after begin: close the output as well as the format allows
}

func newEncoder(format string, w http.ResponseWriter) encoder {
	bw := &flushWriter{w: bufio.NewWriterSize(w, 64<<10), rw: w}
	switch format {
	case "ndjson":
		return &ndjsonEncoder{w: bw}
	case "csv":
		return &csvEncoder{bw: bw, w: csv.NewWriter(bw)}
	case "parquet":
		return &parquetEncoder{w: bw}
	case "arrow":
		return &arrowEncoder{w: bw}
	}
	return &jsonEncoder{w: bw}
}

// flushWriter buffers output and sends it to the client every 64 KiB (so large results stream)
// and at the end.
type flushWriter struct {
	w  *bufio.Writer
	rw http.ResponseWriter
}

func (f *flushWriter) Write(p []byte) (int, error) {
	before := f.w.Buffered()
	n, err := f.w.Write(p)
	if err == nil && f.w.Buffered() < before { // the buffer was written out: push it to the client
		if fl, ok := f.rw.(http.Flusher); ok {
			fl.Flush()
		}
	}
	return n, err
}

func (f *flushWriter) flush() error {
	if err := f.w.Flush(); err != nil {
		return err
	}
	if fl, ok := f.rw.(http.Flusher); ok {
		fl.Flush()
	}
	return nil
}

// uniqueNames returns the column names, made unique (a repeated name gets _2, _3, …): JSON objects
// and Parquet schemas need distinct keys.
func uniqueNames(cols []query.Column) []string {
	seen := map[string]bool{}
	out := make([]string, len(cols))
	for i, c := range cols {
		name := c.Name
		for k := 2; seen[name]; k++ {
			name = c.Name + "_" + strconv.Itoa(k)
		}
		seen[name] = true
		out[i] = name
	}
	return out
}

// appendJSON appends v (a value from query.Rows) as JSON: timestamps as RFC 3339 strings, bytes as
// base64, NaN and infinities as strings, exact decimals as strings.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return append(b, `"NaN"`...)
		case math.IsInf(x, 1):
			return append(b, `"Infinity"`...)
		case math.IsInf(x, -1):
			return append(b, `"-Infinity"`...)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case string:
		return appendJSONString(b, x)
	case time.Time:
		b = append(b, '"')
		b = x.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	}
	return appendJSONString(b, query.ValueText(v))
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonEncoder writes {"columns":[…],"rows":[[…],…],"row_count":n,"truncated":false,"elapsed_ms":…}.
type jsonEncoder struct {
	w     *flushWriter
	buf   []byte
	first bool
}

func (e *jsonEncoder) begin(cols []query.Column) error {
	b := append(e.buf[:0], `{"columns":[`...)
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, c.Name)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, c.Type)
		b = append(b, '}')
	}
	b = append(b, "],\n\"rows\":["...)
	e.buf, e.first = b, true
	_, err := e.w.Write(b)
	return err
}

func (e *jsonEncoder) row(vals []any) error {
	b := e.buf[:0]
	if !e.first {
		b = append(b, ",\n"...)
	} else {
		b = append(b, '\n')
	}
	e.first = false
	b = append(b, '[')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSON(b, v)
	}
	b = append(b, ']')
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

func (e *jsonEncoder) end(truncated bool, rows int, elapsed time.Duration) error {
	b := append(e.buf[:0], "\n],\"row_count\":"...)
	b = strconv.AppendInt(b, int64(rows), 10)
	b = append(b, `,"truncated":`...)
	b = strconv.AppendBool(b, truncated)
	b = append(b, `,"elapsed_ms":`...)
	b = strconv.AppendFloat(b, float64(elapsed.Microseconds())/1000, 'f', 3, 64)
	b = append(b, "}\n"...)
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	return e.w.flush()
}

func (e *jsonEncoder) fail(err error) {
	b := append(e.buf[:0], "\n],\"error\":"...)
	b = appendJSONString(b, err.Error())
	b = append(b, "}\n"...)
	_, _ = e.w.Write(b)
	_ = e.w.flush()
}

// ndjsonEncoder writes one JSON object per row, keyed by column name.
type ndjsonEncoder struct {
	w    *flushWriter
	keys [][]byte
	buf  []byte
}

func (e *ndjsonEncoder) begin(cols []query.Column) error {
	for _, n := range uniqueNames(cols) {
		e.keys = append(e.keys, append(appendJSONString(nil, n), ':'))
	}
	return nil
}

func (e *ndjsonEncoder) row(vals []any) error {
	b := append(e.buf[:0], '{')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.keys[i]...)
		b = appendJSON(b, v)
	}
	b = append(b, "}\n"...)
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

func (e *ndjsonEncoder) end(bool, int, time.Duration) error { return e.w.flush() }

func (e *ndjsonEncoder) fail(error) { _ = e.w.flush() }

// csvEncoder writes RFC 4180 CSV with a header row; NULL is an empty field, timestamps RFC 3339.
type csvEncoder struct {
	bw     *flushWriter
	w      *csv.Writer
	record []string
}

func (e *csvEncoder) begin(cols []query.Column) error {
	e.record = make([]string, len(cols))
	for i, c := range cols {
		e.record[i] = c.Name
	}
	return e.w.Write(e.record)
}

func (e *csvEncoder) row(vals []any) error {
	for i, v := range vals {
		e.record[i] = csvField(v)
	}
	return e.w.Write(e.record)
}

func csvField(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	return query.ValueText(v)
}

func (e *csvEncoder) end(bool, int, time.Duration) error {
	e.w.Flush()
	if err := e.w.Error(); err != nil {
		return err
	}
	return e.bw.flush()
}

func (e *csvEncoder) fail(error) {
	e.w.Flush()
	_ = e.bw.flush()
}

var _ io.Writer = (*flushWriter)(nil)
