// Package pgwire serves SQL over the PostgreSQL wire protocol (github.com/jeroenrinzema/psql-wire),
// so psql, pgx, JDBC and Grafana's PostgreSQL data source query sluice as they would PostgreSQL 15.
// It owns the protocol's shape only: package query runs every statement (sandbox, timeout, row
// limit); here statements are described (columns and parameter types from DuckDB's prepared
// statement), parameters decoded, DuckDB types mapped to PostgreSQL OIDs (types without a twin are
// text), and errors given SQLSTATEs (42501 refused, 42601 invalid, 57014 timeout, 22000 failed
// while running, 54000 too many rows) with the position as the hint.
//
// # Compatibility
//
// What PostgreSQL clients send and DuckDB lacks is handled in compat.go: functions they call
// (version, current_setting, quote_ident, parse_ident, array_lower/upper) are macros installed at
// engine start (Setup); SET of the session parameters drivers set on connect is accepted and changes
// nothing, other SETs are refused by the engine; SHOW of PostgreSQL's parameters is answered here;
// BEGIN/COMMIT/ROLLBACK are accepted (every query is one snapshot); and a few exact query shapes
// (Grafana's search-path subquery, its TimescaleDB probe, information_schema listing internal
// tables) are rewritten. Rewrites match whole shapes, so other queries are passed through untouched.
//
// # Security
//
// Password authentication (clear text, as psql-wire offers; enable TLS off loopback) when
// query.pgwire.username is set; TLS from query.pgwire.tls_cert and tls_key (clients choose it with
// sslmode=require). psql-wire serves each connection on its own goroutine; Close waits for them up
// to its context, then cuts them off.
package pgwire
