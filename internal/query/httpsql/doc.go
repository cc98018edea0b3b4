// Package httpsql serves SQL over HTTP: POST /api/v1/query, mounted on sluice's HTTP listener
// (package httpapi, behind its TLS and authentication). The body is the SQL text, or a JSON request
// {"sql", "params", "format", "max_rows"}; the result is JSON (default), NDJSON, CSV, Parquet or an
// Arrow IPC stream, chosen by the format parameter or the Accept header, and streamed as it is
// encoded (flushed every 64 KiB). Errors before the first byte are JSON with an HTTP status (403
// refused, 400 invalid with line and column, 408 timeout, 422 failed while running, 503
// unavailable); once streaming, the X-Sluice-Error trailer says what went wrong (and the JSON body).
// X-Sluice-Rows and X-Sluice-Truncated trailers close every result.
//
// It owns only the HTTP shape: package query runs the statement (sandbox, timeout, row limit). Each
// request is served on its own goroutine by net/http. Parquet is written with parquet-go, Arrow with
// arrow-go (already in the module graph through DuckDB's driver); JSON and CSV by hand with strconv
// appends, because encoding/json's reflection costs several times more per value on million-row
// results.
package httpsql
