package query

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The sandbox has two layers. DuckDB's own settings (applied once at Open, then locked) keep every
// statement inside the lake: enable_external_access=false with allowed_directories = the lake (and
// the spill directory), no extension installs or autoloading, lock_configuration=true. They do not
// stop statements that stay inside those directories from writing (COPY … TO a path in the lake,
// ATTACH ':memory:', CREATE, INSERT into the engine's own tables), so every statement also passes
// checkStatement: its first keyword must start a query, and the prepared statement must be a SELECT
// (EXPLAIN is allowed around a SELECT only). Queries then run in a READ ONLY transaction.

// allowedStart are the keywords a read-only query may start with. DESCRIBE, SHOW, SUMMARIZE, FROM,
// TABLE and VALUES are DuckDB's shorthands for SELECTs.
var allowedStart = map[string]bool{
	"SELECT": true, "WITH": true, "VALUES": true, "FROM": true, "TABLE": true, "(": true,
	"EXPLAIN": true, "DESCRIBE": true, "DESC": true, "SHOW": true, "SUMMARIZE": true,
}

// refusals explain, per first keyword, why a statement is refused and what to do instead.
var refusals = map[string]string{
	"ATTACH":     "ATTACH is not allowed: queries read the lake only",
	"DETACH":     "DETACH is not allowed: queries read the lake only",
	"INSTALL":    "INSTALL is not allowed: extensions cannot be installed (parquet, json and icu are built in)",
	"LOAD":       "LOAD is not allowed: extensions cannot be loaded (parquet, json and icu are built in)",
	"FORCE":      "INSTALL is not allowed: extensions cannot be installed (parquet, json and icu are built in)",
	"COPY":       "COPY is not allowed: queries cannot write files; ask the HTTP API for format=csv or format=parquet instead",
	"EXPORT":     "EXPORT is not allowed: queries cannot write files",
	"IMPORT":     "IMPORT is not allowed: queries read the lake only",
	"SET":        "SET is not allowed: the engine's settings are fixed by sluice's configuration (section query)",
	"RESET":      "RESET is not allowed: the engine's settings are fixed by sluice's configuration (section query)",
	"PRAGMA":     "PRAGMA is not allowed: use the pragma_* table functions instead, e.g. SELECT * FROM pragma_table_info('readings')",
	"CALL":       "CALL is not allowed: use SELECT * FROM <function>(…) instead",
	"USE":        "USE is not allowed: everything is in the default schema",
	"CHECKPOINT": "CHECKPOINT is not allowed: queries are read-only",
	"VACUUM":     "VACUUM is not allowed: queries are read-only",
	"ANALYZE":    "ANALYZE is not allowed: queries are read-only",
	"PREPARE":    "PREPARE is not allowed: send the statement itself (the PostgreSQL protocol prepares statements for you)",
	"EXECUTE":    "EXECUTE is not allowed: send the statement itself",
	"DEALLOCATE": "DEALLOCATE is not allowed",
	"BEGIN":      "transactions are not needed: every query reads one consistent snapshot",
	"START":      "transactions are not needed: every query reads one consistent snapshot",
	"COMMIT":     "transactions are not needed: every query reads one consistent snapshot",
	"END":        "transactions are not needed: every query reads one consistent snapshot",
	"ROLLBACK":   "transactions are not needed: every query reads one consistent snapshot",
	"ABORT":      "transactions are not needed: every query reads one consistent snapshot",
	"PIVOT":      "PIVOT statements are not supported here: write the PIVOT inside a SELECT (SELECT * FROM (PIVOT …))",
	"UNPIVOT":    "UNPIVOT statements are not supported here: write it inside a SELECT (SELECT * FROM (UNPIVOT …))",
}

// writes are the first keywords of statements that change data or the catalog.
var writes = map[string]bool{
	"CREATE": true, "INSERT": true, "UPDATE": true, "DELETE": true, "DROP": true, "ALTER": true,
	"TRUNCATE": true, "MERGE": true, "UPSERT": true, "REPLACE": true, "COMMENT": true, "GRANT": true,
	"REVOKE": true, "DETACH": true,
}

// readOnlyHint is the refusal for statements that would change data or the catalog.
const readOnlyHint = " is not allowed: the SQL interface is read-only"

// checkStatement refuses q unless it starts like a read-only query. It returns the offset of the
// statement inside q after EXPLAIN [ANALYZE] (0 when q is not an EXPLAIN), so the caller can check
// what an EXPLAIN would run. An empty q (only blanks and comments) gives ("", -1, nil).
func checkStatement(q string) (first string, inner int, err *Error) {
	kw, next := keyword(q, 0)
	if kw == "" {
		return "", -1, nil
	}
	if !allowedStart[kw] {
		if why, ok := refusals[kw]; ok {
			return kw, 0, refused("%s", why)
		}
		if writes[kw] {
			return kw, 0, refused("%s%s", kw, readOnlyHint)
		}
		return kw, 0, nil // DuckDB reports the syntax error, or the statement type check refuses it
	}
	if kw != "EXPLAIN" {
		return kw, 0, nil
	}
	k2, after := keyword(q, next)
	if k2 == "ANALYZE" || k2 == "ANALYSE" {
		next = after
		k2, _ = keyword(q, next)
	}
	if k2 == "" || (!allowedStart[k2] || k2 == "EXPLAIN") {
		return kw, 0, refused("EXPLAIN is allowed only around a query (SELECT …)")
	}
	return kw, next, nil
}

// keyword returns the upper-cased word (or a single "(") that starts at or after offset from in q,
// skipping blanks, -- line comments and /* block comments */, and the offset just after it. At the
// end of q it returns "".
func keyword(q string, from int) (string, int) {
	i := skipBlank(q, from)
	if i >= len(q) {
		return "", len(q)
	}
	if q[i] == '(' {
		return "(", i + 1
	}
	j := i
	for j < len(q) {
		r, size := utf8.DecodeRuneInString(q[j:])
		if !(unicode.IsLetter(r) || r == '_' || (j > i && unicode.IsDigit(r))) {
			break
		}
		j += size
	}
	if j == i { // not a word: a symbol or a quoted identifier
		_, size := utf8.DecodeRuneInString(q[i:])
		return q[i : i+size], i + size
	}
	return strings.ToUpper(q[i:j]), j
}

// skipBlank returns the offset of the first character at or after i that is neither white space
// nor inside a comment. An unterminated block comment runs to the end.
func skipBlank(q string, i int) int {
	for i < len(q) {
		switch {
		case q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r' || q[i] == '\f' || q[i] == '\v' || q[i] == ';':
			i++
		case strings.HasPrefix(q[i:], "--"):
			nl := strings.IndexByte(q[i:], '\n')
			if nl < 0 {
				return len(q)
			}
			i += nl + 1
		case strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return len(q)
			}
			i += 2 + end + 2
		default:
			r, size := utf8.DecodeRuneInString(q[i:])
			if r == utf8.RuneError && size <= 1 || !unicode.IsSpace(r) {
				return i
			}
			i += size
		}
	}
	return len(q)
}
