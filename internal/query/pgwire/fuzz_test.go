package pgwire

import (
	"strings"
	"testing"
)

// FuzzClassifyAndRewrite: every query a client sends goes through the compatibility rewrites and the
// SET/SHOW/transaction classification first. Neither may panic; a SHOW answer is always a known
// parameter, and SET is only ever accepted for the settable ones.
func FuzzClassifyAndRewrite(f *testing.F) {
	for _, s := range []string{
		"", "SET extra_float_digits = 3", "SET threads = 8", "SHOW server_version_num", "SHOW TABLES", "BEGIN", "COMMIT;",
		"SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'", "SELECT * FROM information_schema.tables",
		"SET TIME ZONE 'UTC'", "SHOW \"TimeZone\"", "set session characteristics as transaction read only",
		"quote_ident(table_schema) IN (SELECT CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END FROM generate_series(1,2) as i, string_to_array(current_setting('search_path'),',') s)",
		strings.Repeat("SHOW ", 10000), "SET \xff", "BEGIN garbage; DROP",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_ = Rewrite(q)
		cmd, name, value := classify(q)
		switch cmd {
		case cmdShow:
			if v, ok := sessionParams[name]; !ok || v != value {
				t.Fatalf("SHOW %q answered %q", name, value)
			}
		case cmdSetNoop:
			if !settable[name] {
				t.Fatalf("SET %q accepted", name)
			}
		}
	})
}
