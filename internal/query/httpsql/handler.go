package httpsql

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-project/sluice/internal/query"
)

// Path is where the handler is mounted.
const Path = "/api/v1/query"

// MaxBody bounds a request body (the SQL and its parameters).
const MaxBody = 1 << 20

// Request is the JSON form of a query request (Content-Type: application/json). Any other body is
// the SQL text itself, with format and max_rows as URL parameters.
type Request struct {
	SQL     string `json:"sql"`
	Params  []any  `json:"params,omitempty"`   // values for $1, $2, …
	Format  string `json:"format,omitempty"`   // json (default), csv, ndjson, parquet, arrow
	MaxRows int    `json:"max_rows,omitempty"` // lower than the server's limit, or 0
}

// Formats and their media types.
var formats = map[string]string{
	"json":    "application/json",
	"ndjson":  "application/x-ndjson",
	"csv":     "text/csv; charset=utf-8",
	"parquet": "application/vnd.apache.parquet",
	"arrow":   "application/vnd.apache.arrow.stream",
}

// acceptable maps media types a client may send in Accept to a format.
var acceptable = map[string]string{
	"application/json": "json", "application/x-ndjson": "ndjson", "application/ndjson": "ndjson",
	"application/jsonl": "ndjson", "text/csv": "csv", "application/vnd.apache.parquet": "parquet",
	"application/parquet": "parquet", "application/x-parquet": "parquet",
	"application/vnd.apache.arrow.stream": "arrow", "application/vnd.apache.arrow.file": "arrow",
}

// Trailers carry what is known only after the last row.
const (
	TrailerRows      = "X-Sluice-Rows"
	TrailerTruncated = "X-Sluice-Truncated"
	TrailerError     = "X-Sluice-Error"
)

// Handler returns the handler of POST /api/v1/query on e. Results stream as they are encoded.
func Handler(e *query.Engine, logger *slog.Logger) http.Handler {
	return &handler{e: e, logger: logger}
}

type handler struct {
	e      *query.Engine
	logger *slog.Logger
}

// errorBody is the JSON body of an error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Offset  *int   `json:"offset,omitempty"`
}

func writeError(w http.ResponseWriter, status int, kind, msg string, qe *query.Error) {
	d := errorDetail{Kind: kind, Message: msg}
	if qe != nil && qe.Line > 0 {
		d.Line, d.Column = qe.Line, qe.Column
		off := qe.Offset
		d.Offset = &off
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Trailer")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: d})
}

// statusOf maps a query error to an HTTP status and a kind name.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, query.ErrRefused):
		return http.StatusForbidden, "refused"
	case errors.Is(err, query.ErrInvalid):
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, query.ErrTimeout):
		return http.StatusRequestTimeout, "timeout"
	case errors.Is(err, query.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, query.ErrExecution):
		return http.StatusUnprocessableEntity, "execution"
	}
	return http.StatusInternalServerError, "internal"
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "invalid", "send the query with POST", nil)
		return
	}
	req, err := parseRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error(), nil)
		return
	}
	format, err := chooseFormat(req.Format, r.Header.Get("Accept"))
	if err != nil {
		writeError(w, http.StatusNotAcceptable, "invalid", err.Error(), nil)
		return
	}
	if strings.TrimSpace(req.SQL) == "" || query.IsEmpty(req.SQL) {
		writeError(w, http.StatusBadRequest, "invalid", `no SQL: send it as the body, or as {"sql": "..."} with Content-Type: application/json`, nil)
		return
	}
	start := time.Now()
	var enc encoder
	err = h.e.Query(r.Context(), query.Request{SQL: req.SQL, Args: req.Params, MaxRows: req.MaxRows}, func(rows *query.Rows) error {
		hd := w.Header()
		hd.Set("Content-Type", formats[format])
		hd.Set("Trailer", TrailerRows+", "+TrailerTruncated+", "+TrailerError)
		hd.Set("X-Content-Type-Options", "nosniff")
		if format == "parquet" || format == "arrow" {
			hd.Set("Content-Disposition", `attachment; filename="result.`+format+`"`)
		}
		w.WriteHeader(http.StatusOK)
		enc = newEncoder(format, w)
		cols := rows.Columns()
		if err := enc.begin(cols); err != nil {
			return err
		}
		vals := make([]any, len(cols))
		for {
			err := rows.Next(vals)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := enc.row(vals); err != nil {
				return err
			}
		}
		if err := enc.end(rows.Truncated(), rows.Count(), time.Since(start)); err != nil {
			return err
		}
		hd.Set(TrailerRows, strconv.Itoa(rows.Count()))
		hd.Set(TrailerTruncated, strconv.FormatBool(rows.Truncated()))
		return nil
	})
	if err == nil {
		return
	}
	if enc == nil { // nothing written yet: a proper error response
		status, kind := statusOf(err)
		msg := err.Error()
		var qe *query.Error
		if errors.As(err, &qe) {
			msg = qe.Message
		}
		writeError(w, status, kind, msg, qe)
		return
	}
	// Mid-stream: the status is sent; say it in the trailer (and the body, where the format can).
	h.logger.Warn("sql query failed while streaming its result", "err", err)
	enc.fail(err)
	w.Header().Set(TrailerError, strings.ReplaceAll(err.Error(), "\n", " "))
}

// parseRequest reads the query from a JSON body, or a plain SQL body with URL parameters.
func parseRequest(r *http.Request) (Request, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return Request{}, fmt.Errorf("read request: %w", err)
	}
	if len(body) > MaxBody {
		return Request{}, fmt.Errorf("request body larger than %d bytes", MaxBody)
	}
	q := r.URL.Query()
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var req Request
	if ct == "application/json" {
		if req, err = DecodeRequest(body); err != nil {
			return Request{}, err
		}
	} else {
		req.SQL = string(body)
		if req.SQL == "" {
			req.SQL = q.Get("sql")
		}
	}
	if f := q.Get("format"); f != "" {
		req.Format = f
	}
	if m := q.Get("max_rows"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return Request{}, fmt.Errorf("max_rows %q: want a non-negative integer", m)
		}
		req.MaxRows = n
	}
	return req, nil
}

// DecodeRequest parses a JSON query request. Numbers in params stay exact (json.Number, passed as
// int64 when integral, else float64).
func DecodeRequest(body []byte) (Request, error) {
	var raw struct {
		SQL     *string           `json:"sql"`
		Params  []json.RawMessage `json:"params"`
		Format  string            `json:"format"`
		MaxRows int               `json:"max_rows"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Request{}, fmt.Errorf(`request body: %w; want {"sql": "...", "params": [...], "format": "csv", "max_rows": 100}`, err)
	}
	if raw.SQL == nil {
		return Request{}, errors.New(`request body: no "sql" field`)
	}
	if raw.MaxRows < 0 {
		return Request{}, errors.New(`request body: "max_rows" is negative`)
	}
	req := Request{SQL: *raw.SQL, Format: raw.Format, MaxRows: raw.MaxRows}
	for i, p := range raw.Params {
		v, err := paramValue(p)
		if err != nil {
			return Request{}, fmt.Errorf("request body: params[%d]: %w", i, err)
		}
		req.Params = append(req.Params, v)
	}
	return req, nil
}

func paramValue(p json.RawMessage) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(p)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	}
	return nil, errors.New("want a string, number, boolean or null")
}

// chooseFormat picks the output format: the explicit one, else the first acceptable media type in
// Accept, else JSON.
func chooseFormat(explicit, accept string) (string, error) {
	if explicit != "" {
		f := strings.ToLower(explicit)
		if _, ok := formats[f]; !ok {
			return "", fmt.Errorf("format %q is not supported: use json, ndjson, csv, parquet or arrow", explicit)
		}
		return f, nil
	}
	if accept == "" {
		return "json", nil
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if f, ok := acceptable[mt]; ok {
			return f, nil
		}
		if mt == "text/*" {
			return "csv", nil
		}
		if mt == "*/*" || mt == "application/*" {
			return "json", nil
		}
	}
	return "", fmt.Errorf("none of the media types in Accept (%s) is offered: use application/json, application/x-ndjson, text/csv, application/vnd.apache.parquet or application/vnd.apache.arrow.stream", accept)
}
