package query

import (
	"strings"
	"testing"
)

// FuzzCheckStatement: the statement check reads untrusted SQL. It must not panic, and what it
// returns must point inside the query.
func FuzzCheckStatement(f *testing.F) {
	for _, s := range []string{
		"", "SELECT 1", "EXPLAIN ANALYZE SELECT 1", "EXPLAIN", "EXPLAIN ANALYZE", "/* unterminated", "-- only a comment",
		"  ;; SELECT", "ATTACH ':memory:'", "EXPLAIN ANALYZE DELETE FROM t", "SELE", "SELECT 1; DROP TABLE x",
		"\xff\xfe SELECT", "(((", "EXPLAIN (FORMAT json) SELECT 1", "é SELECT", strings.Repeat("/**/", 1000) + "SELECT",
		"SELECT 1 garbage \x00\x01", strings.Repeat("a", 1<<16),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		kw, inner, err := checkStatement(q)
		if inner > len(q) {
			t.Fatalf("inner %d beyond len %d", inner, len(q))
		}
		if kw == "" && (inner != -1 || err != nil) {
			t.Fatalf("empty statement: inner %d, err %v", inner, err)
		}
		if err != nil && err.Message == "" {
			t.Fatal("a refusal without a reason")
		}
		if inner > 0 && kw != "EXPLAIN" {
			t.Fatalf("inner offset %d for %s", inner, kw)
		}
		for from := 0; from <= len(q); from += 1 + len(q)/8 {
			w, next := keyword(q, from)
			if next < from || next > len(q) || (w == "" && next != len(q)) {
				t.Fatalf("keyword(%q, %d) = %q, %d", q, from, w, next)
			}
		}
	})
}

// FuzzLocate: error positions are parsed from DuckDB's messages and mapped onto the query; neither
// is trusted.
func FuzzLocate(f *testing.F) {
	f.Add("Parser Error: syntax error at or near \"=\"\n\nLINE 3: WHERE = 1\n              ^", "SELECT 1\nFROM t\nWHERE = 1")
	f.Add("Binder Error: x\n\nLINE 1: ...aaaa nope bbbb...\n                ^", strings.Repeat("a", 200)+" nope "+strings.Repeat("b", 200))
	f.Add("", "")
	f.Add("LINE 9: x\n^", "x")
	f.Add("\nLINE -1: x\n   ^", "x")
	f.Add("\nLINE 1: é\n        ^", "é")
	f.Add("\nLINE 1: ...", "")
	f.Fuzz(func(t *testing.T, msg, q string) {
		_, line, col, off := locate(msg, q)
		if line == 0 && (col != 0 || off != -1) {
			t.Fatalf("no line but col %d, offset %d", col, off)
		}
		if line > 0 && (off < 0 || off > len(q) || col < 1) {
			t.Fatalf("line %d col %d offset %d outside a query of %d bytes", line, col, off, len(q))
		}
	})
}
