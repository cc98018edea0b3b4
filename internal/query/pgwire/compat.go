package pgwire

import (
	"regexp"
	"strings"
)

// ServerVersion is the PostgreSQL version announced to clients: the dialect clients may assume for
// catalog queries they send. SQL itself is DuckDB's, which reads most PostgreSQL.
const (
	ServerVersion    = "15.0"
	ServerVersionNum = "150000"
)

// Setup are the statements the engine runs at Open (query.WithSetup) so that what PostgreSQL
// clients call exists: version() as PostgreSQL reports it, current_setting for the parameters
// clients read, quote_ident, parse_ident, array_lower and array_upper. They shadow DuckDB's own
// version() and current_setting() for every interface, HTTP included.
var Setup = []string{
	`CREATE MACRO version() AS 'PostgreSQL ` + ServerVersion + ` (sluice; DuckDB ' || (SELECT library_version FROM pragma_version()) || ')'`,
	`CREATE MACRO current_setting(setting_name) AS CASE lower(setting_name)
	   WHEN 'server_version_num' THEN '` + ServerVersionNum + `'
	   WHEN 'server_version' THEN '` + ServerVersion + `'
	   WHEN 'search_path' THEN 'main'
	   WHEN 'timezone' THEN 'UTC'
	   WHEN 'datestyle' THEN 'ISO, MDY'
	   WHEN 'standard_conforming_strings' THEN 'on'
	   WHEN 'integer_datetimes' THEN 'on'
	   WHEN 'client_encoding' THEN 'UTF8'
	   WHEN 'server_encoding' THEN 'UTF8'
	   WHEN 'max_identifier_length' THEN '63'
	   WHEN 'transaction_isolation' THEN 'repeatable read'
	   WHEN 'default_transaction_read_only' THEN 'on'
	   WHEN 'is_superuser' THEN 'off'
	   ELSE (SELECT value FROM duckdb_settings() WHERE lower(name) = lower(setting_name)) END`,
	`CREATE MACRO quote_ident(s) AS CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') THEN s ELSE '"' || replace(s, '"', '""') || '"' END`,
	`CREATE MACRO parse_ident(s) AS [trim(p, '"') FOR p IN string_split(s, '.')]`,
	`CREATE MACRO array_lower(a, d) AS CASE WHEN len(a) > 0 THEN 1 END`,
	`CREATE MACRO array_upper(a, d) AS CASE WHEN len(a) > 0 THEN len(a) END`,
	`CREATE MACRO pg_backend_pid() AS 1`,
}

// rewrite is one textual rewrite of a query a known client sends, for a construct DuckDB lacks.
type rewrite struct {
	name string
	re   *regexp.Regexp
	with string
}

// rewrites are applied to every query, in order. Each is matched by its exact shape, so ordinary
// queries are left alone.
var rewrites = []rewrite{
	{
		// Grafana's table and column lists keep tables in the search path: a subquery indexing an
		// array by a generate_series alias, which DuckDB does not do. Everything is in main.
		name: "grafana search path",
		re:   regexp.MustCompile(`(?is)quote_ident\(table_schema\)\s+IN\s*\(\s*SELECT\s+CASE\s+WHEN\s+trim\(s\[i\]\)\s*=\s*'"\$user"'\s+THEN\s+user\s+ELSE\s+trim\(s\[i\]\)\s+END\s+FROM\s+generate_series\(.*?string_to_array\(current_setting\('search_path'\),\s*','\)\s+s\s*\)`),
		with: `quote_ident(table_schema) IN ('main')`,
	},
	{
		// Grafana's TimescaleDB probe.
		name: "pg_extension",
		re:   regexp.MustCompile(`(?i)\bFROM\s+(pg_catalog\.)?pg_extension\b`),
		with: `FROM (SELECT NULL::VARCHAR AS extname, NULL::VARCHAR AS extversion WHERE false) AS pg_extension`,
	},
	{
		// Internal tables stay out of table lists: information_schema shows only the views.
		name: "information_schema internals",
		re:   regexp.MustCompile(`(?i)\bFROM\s+information_schema\.(tables|columns)\b`),
		with: `FROM (SELECT * FROM information_schema.$1 WHERE table_schema <> '_sluice') AS $1`,
	},
}

// Rewrite applies the compatibility rewrites to q.
func Rewrite(q string) string {
	for _, r := range rewrites {
		if r.re.MatchString(q) {
			q = r.re.ReplaceAllString(q, r.with)
		}
	}
	return q
}

// sessionParams answer SHOW for the parameters PostgreSQL drivers and tools read.
var sessionParams = map[string]string{
	"server_version": ServerVersion, "server_version_num": ServerVersionNum, "server_encoding": "UTF8",
	"client_encoding": "UTF8", "datestyle": "ISO, MDY", "timezone": "UTC", "integer_datetimes": "on",
	"standard_conforming_strings": "on", "search_path": "main", "transaction_isolation": "repeatable read",
	"transaction isolation level": "repeatable read", "max_identifier_length": "63", "is_superuser": "off",
	"default_transaction_read_only": "on", "transaction_read_only": "on", "application_name": "",
	"intervalstyle": "postgres", "lc_collate": "C", "lc_ctype": "C", "bytea_output": "hex",
}

// settable are the session parameters drivers set when they connect (JDBC: extra_float_digits,
// application_name; others DateStyle, client_encoding…). Setting them is accepted and has no effect:
// sluice's output is always UTF-8, ISO dates, UTC, full float precision.
var settable = map[string]bool{
	"application_name": true, "extra_float_digits": true, "client_encoding": true, "datestyle": true,
	"timezone": true, "time zone": true, "search_path": true, "statement_timeout": true, "lock_timeout": true,
	"idle_in_transaction_session_timeout": true, "intervalstyle": true, "client_min_messages": true,
	"bytea_output": true, "standard_conforming_strings": true, "session characteristics": true,
	"transaction": true, "session": true, "jit": true, "join_collapse_limit": true,
}

// command is how the server handles one statement.
type command int

const (
	cmdQuery   command = iota // run by DuckDB
	cmdEmpty                  // no statement
	cmdSetNoop                // SET of a session parameter: accepted, no effect
	cmdShow                   // SHOW of a session parameter
	cmdTxNoop                 // BEGIN, COMMIT, ROLLBACK: every query is its own snapshot
)

var (
	setRE  = regexp.MustCompile(`(?is)^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?(time\s+zone|session\s+characteristics|transaction|[a-z_.]+)\b`)
	showRE = regexp.MustCompile(`(?is)^\s*SHOW\s+("?[a-z_ ]+?"?)\s*;?\s*$`)
	txRE   = regexp.MustCompile(`(?is)^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b[^;]*;?\s*$`)
)

// classify says how to handle q, and for SHOW the parameter's name and value.
func classify(q string) (cmd command, name, value string) {
	if m := txRE.FindStringSubmatch(q); m != nil {
		return cmdTxNoop, strings.ToUpper(strings.Fields(m[1])[0]), ""
	}
	if m := setRE.FindStringSubmatch(q); m != nil {
		key := strings.ToLower(strings.Join(strings.Fields(m[1]), " "))
		if settable[key] {
			return cmdSetNoop, key, ""
		}
		return cmdQuery, "", "" // the engine refuses it, with its reason
	}
	if m := showRE.FindStringSubmatch(q); m != nil {
		key := strings.ToLower(strings.Join(strings.Fields(strings.Trim(m[1], `"`)), " "))
		if v, ok := sessionParams[key]; ok {
			return cmdShow, key, v
		}
	}
	return cmdQuery, "", ""
}
