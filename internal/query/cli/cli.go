// Package cli is `sluice query`: one SQL statement against a running sluice (its HTTP SQL API) or,
// when none runs, directly on the lake it wrote, printed as an aligned table, CSV, JSON or Parquet.
// Both paths produce the same bytes: the direct path runs the HTTP handler in-process over an
// engine opened once on the lake (query.Static: no hot rows, no polling).
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-project/sluice/internal/query"
	"github.com/sluice-project/sluice/internal/query/httpsql"
)

// Options say what to run and where.
type Options struct {
	SQL     string
	Format  string // table (default), csv, json, ndjson, parquet, arrow
	MaxRows int
	// HTTP is the base URL or host:port of a running sluice; Token or Username/Password
	// authenticate. Explicit means the user named it: then it is never bypassed.
	HTTP               string
	Explicit           bool
	Token              string
	Username, Password string
	// LakeURL is the lake to read directly when no sluice answers (or when Direct).
	LakeURL string
	Direct  bool
	Config  query.Config
}

// Run executes the query and writes the result to out; notes go to errOut.
func Run(ctx context.Context, o Options, out, errOut io.Writer) error {
	format := o.Format
	if format == "" {
		format = "table"
	}
	wire := format
	if format == "table" {
		wire = "json"
	}
	var body io.Reader
	var err error
	if !o.Direct {
		body, err = viaHTTP(ctx, o, wire)
		var ne *net.OpError
		if err != nil && errors.As(err, &ne) && !o.Explicit && o.LakeURL != "" {
			fmt.Fprintf(errOut, "sluice query: no sluice answers at %s; reading the lake %s directly (committed data only)\n", o.HTTP, o.LakeURL)
			body, err = direct(ctx, o, wire)
		}
	} else {
		body, err = direct(ctx, o, wire)
	}
	if err != nil {
		return err
	}
	if format != "table" {
		_, err := io.Copy(out, body)
		return err
	}
	return printTable(out, body)
}

// errorResponse is the JSON error body of the SQL API.
type errorResponse struct {
	Error struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
		Line    int    `json:"line"`
		Column  int    `json:"column"`
	} `json:"error"`
}

func apiError(status int, body []byte) error {
	var er errorResponse
	if json.Unmarshal(body, &er) == nil && er.Error.Message != "" {
		if er.Error.Line > 0 {
			return fmt.Errorf("%s (line %d, column %d)", er.Error.Message, er.Error.Line, er.Error.Column)
		}
		return errors.New(er.Error.Message)
	}
	return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
}

func viaHTTP(ctx context.Context, o Options, format string) (io.Reader, error) {
	base := o.HTTP
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimRight(base, "/") + httpsql.Path + "?format=" + format
	if o.MaxRows > 0 {
		url += fmt.Sprintf("&max_rows=%d", o.MaxRows)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(o.SQL))
	if err != nil {
		return nil, fmt.Errorf("sluice query: %w", err)
	}
	req.Header.Set("Content-Type", "application/sql")
	switch {
	case o.Token != "":
		req.Header.Set("Authorization", "Bearer "+o.Token)
	case o.Username != "":
		req.SetBasicAuth(o.Username, o.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("sluice query: read the result: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("sluice query: %s has no SQL API (query.enabled false, or the lake is not on a local disk)", o.HTTP)
		}
		return nil, apiError(resp.StatusCode, data)
	}
	if msg := resp.Trailer.Get(httpsql.TrailerError); msg != "" {
		return nil, errors.New(msg)
	}
	return bytes.NewReader(data), nil
}

// recorder is a ResponseWriter that keeps the response in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func direct(ctx context.Context, o Options, format string) (io.Reader, error) {
	cfg := o.Config
	cfg.PGWire.Listen = ""
	e, err := query.Open(ctx, o.LakeURL, cfg, query.Static(), query.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	defer e.Close()
	url := httpsql.Path + "?format=" + format
	if o.MaxRows > 0 {
		url += fmt.Sprintf("&max_rows=%d", o.MaxRows)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(o.SQL))
	if err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}}
	httpsql.Handler(e, slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		return nil, apiError(rec.status, rec.body.Bytes())
	}
	if msg := rec.header.Get(httpsql.TrailerError); msg != "" {
		return nil, errors.New(msg)
	}
	return &rec.body, nil
}

// printTable renders the API's JSON result as an aligned table, as psql does.
func printTable(out io.Writer, body io.Reader) error {
	var res struct {
		Columns []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"columns"`
		Rows      [][]json.RawMessage `json:"rows"`
		RowCount  int                 `json:"row_count"`
		Truncated bool                `json:"truncated"`
		Elapsed   float64             `json:"elapsed_ms"`
		Error     string              `json:"error"`
	}
	if err := json.NewDecoder(body).Decode(&res); err != nil {
		return fmt.Errorf("sluice query: read the result: %w", err)
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	cells := make([][]string, len(res.Rows))
	widths := make([]int, len(res.Columns))
	right := make([]bool, len(res.Columns))
	for i, c := range res.Columns {
		widths[i] = utf8.RuneCountInString(c.Name)
		right[i] = true
	}
	for r, row := range res.Rows {
		cells[r] = make([]string, len(row))
		for i, v := range row {
			s, num := cellText(v)
			num = num || exactNumber(res.Columns[i].Type) // its digits come as a JSON string
			if (!num || string(v) == "true" || string(v) == "false") && string(v) != "null" {
				right[i] = false
			}
			cells[r][i] = s
			widths[i] = max(widths[i], utf8.RuneCountInString(s))
		}
	}
	var b strings.Builder
	for i, c := range res.Columns {
		if i > 0 {
			b.WriteString(" | ")
		} else {
			b.WriteString(" ")
		}
		b.WriteString(pad(c.Name, widths[i], right[i] && len(res.Rows) > 0, i == len(widths)-1))
	}
	b.WriteString("\n")
	for i := range res.Columns {
		if i > 0 {
			b.WriteString("+")
		}
		b.WriteString(strings.Repeat("-", widths[i]+2))
	}
	b.WriteString("\n")
	for _, row := range cells {
		for i, s := range row {
			if i > 0 {
				b.WriteString(" | ")
			} else {
				b.WriteString(" ")
			}
			b.WriteString(pad(s, widths[i], right[i], i == len(widths)-1))
		}
		b.WriteString("\n")
	}
	plural := "s"
	if res.RowCount == 1 {
		plural = ""
	}
	fmt.Fprintf(&b, "(%d row%s", res.RowCount, plural)
	if res.Truncated {
		b.WriteString(", truncated: the result has more; raise --max-rows or add a LIMIT")
	}
	fmt.Fprintf(&b, "; %s)\n", time.Duration(res.Elapsed*float64(time.Millisecond)).Round(time.Millisecond/10))
	_, err := io.WriteString(out, b.String())
	return err
}

// exactNumber reports whether a DuckDB type is a number the JSON result carries as a string, so that
// no digit is lost (HUGEINT: sum(count) over readings_1m, DECIMAL, UBIGINT).
func exactNumber(duckType string) bool {
	for _, p := range []string{"HUGEINT", "UHUGEINT", "UBIGINT", "BIGNUM", "DECIMAL"} {
		if strings.HasPrefix(duckType, p) {
			return true
		}
	}
	return false
}

// cellText renders one JSON value for the table, and whether it is a number.
func cellText(v json.RawMessage) (string, bool) {
	switch {
	case string(v) == "null":
		return "", true
	case len(v) > 0 && v[0] == '"':
		var s string
		_ = json.Unmarshal(v, &s)
		return strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(s), false
	case len(v) > 0 && (v[0] == '[' || v[0] == '{'):
		return string(v), false
	}
	return string(v), true
}

func pad(s string, w int, right, last bool) string {
	n := w - utf8.RuneCountInString(s)
	if n <= 0 || (last && !right) {
		return s
	}
	if right {
		return strings.Repeat(" ", n) + s
	}
	return s + strings.Repeat(" ", n)
}
