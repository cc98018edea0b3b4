package delta

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const testSchema = `{"type":"struct","fields":[{"name":"a","type":"long","nullable":false,"metadata":{}},{"name":"date","type":"date","nullable":true,"metadata":{}}]}`

func testCreate() []Action {
	ct := int64(1700000000000)
	return []Action{
		{CommitInfo: &CommitInfo{Timestamp: ct, Operation: "CREATE TABLE", IsBlindAppend: true}},
		{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &Metadata{ID: "af23c9d7-fff1-4a5a-a2c8-55c59bd782aa", Format: Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString: testSchema, PartitionColumns: []string{"date"}, CreatedTime: &ct, Configuration: map[string]string{}}},
	}
}

func TestEncodeParseCommitRoundTrip(t *testing.T) {
	lu := int64(1700000000001)
	actions := append(testCreate(),
		Action{Add: &Add{Path: "date=2026-11-22/part-1.parquet", PartitionValues: map[string]string{"date": "2026-11-22"}, Size: 10, ModificationTime: 5, DataChange: true, Stats: `{"numRecords":3}`}},
		Action{Remove: &Remove{Path: "date=2026-11-21/part-0.parquet", DataChange: false}},
		Action{Txn: &Txn{AppID: "decoder-p0", Version: 7, LastUpdated: &lu}},
	)
	data, err := EncodeCommit(actions)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != len(actions) || !strings.HasSuffix(string(data), "}\n") {
		t.Fatalf("commit has %d lines, want %d, each ending in a newline:\n%s", n, len(actions), data)
	}
	got, err := ParseCommit(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, actions) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, actions)
	}
	if _, err := EncodeCommit([]Action{{}}); err == nil {
		t.Fatal("an empty action encoded")
	}
	if _, err := EncodeCommit([]Action{{Txn: &Txn{AppID: "a"}, Add: &Add{Path: "p"}}}); err == nil {
		t.Fatal("an action with two kinds encoded")
	}
}

func TestParseCommitRejects(t *testing.T) {
	cases := []struct {
		name, text string
	}{
		{"not json", "{\"add\":"},
		{"not an object", "[1,2]"},
		{"two kinds on a line", `{"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":1,"dataChange":true},"txn":{"appId":"x","version":1}}`},
		{"add without path", `{"add":{"size":1}}`},
		{"add with negative size", `{"add":{"path":"a","size":-1}}`},
		{"remove without path", `{"remove":{"dataChange":true}}`},
		{"txn without appId", `{"txn":{"version":1}}`},
		{"metaData without id", `{"metaData":{"schemaString":"{\"type\":\"struct\",\"fields\":[]}"}}`},
		{"metaData with a bad schema", `{"metaData":{"id":"x","schemaString":"{\"type\":\"array\"}"}}`},
		{"protocol version 0", `{"protocol":{"minReaderVersion":0,"minWriterVersion":2}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseCommit([]byte(c.text + "\n")); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ParseCommit(%s) = %v, want ErrCorrupt", c.text, err)
			}
		})
	}
	// Unknown actions and blank lines are skipped.
	got, err := ParseCommit([]byte("\n{\"cdc\":{\"path\":\"x\"}}\n\n{\"domainMetadata\":{\"domain\":\"d\"}}\n"))
	if err != nil || len(got) != 2 || got[0].count() != 0 {
		t.Fatalf("unknown actions: %+v, %v", got, err)
	}
}

func TestProtocolSupported(t *testing.T) {
	cases := []struct {
		p  Protocol
		ok bool
	}{
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, true},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 1}, true},
		{Protocol{MinReaderVersion: 1, MinWriterVersion: 3}, false},
		{Protocol{MinReaderVersion: 2, MinWriterVersion: 5}, false},
		{Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors"}, WriterFeatures: []string{"deletionVectors"}}, false},
	}
	for _, c := range cases {
		if err := c.p.Supported(); (err == nil) != c.ok {
			t.Errorf("Supported(%+v) = %v, want ok=%v", c.p, err, c.ok)
		}
	}
}

func TestParseSchema(t *testing.T) {
	// The example of PROTOCOL.md "Schema Serialization Format".
	example := `{"type":"struct","fields":[{"name":"a","type":"integer","nullable":false,"metadata":{}},
	{"name":"b","type":{"type":"struct","fields":[{"name":"d","type":"integer","nullable":false,"metadata":{}}]},"nullable":true,"metadata":{}},
	{"name":"c","type":{"type":"array","elementType":"integer","containsNull":false},"nullable":true,"metadata":{}},
	{"name":"e","type":{"type":"array","elementType":{"type":"struct","fields":[{"name":"d","type":"integer","nullable":false,"metadata":{}}]},"containsNull":true},"nullable":true,"metadata":{}},
	{"name":"f","type":{"type":"map","keyType":"string","valueType":"string","valueContainsNull":true},"nullable":true,"metadata":{}}]}`
	s, err := ParseSchema([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	want := &StructType{Fields: []StructField{
		{Name: "a", Type: Primitive("integer"), Metadata: map[string]any{}},
		{Name: "b", Type: DataType{Struct: &StructType{Fields: []StructField{{Name: "d", Type: Primitive("integer"), Metadata: map[string]any{}}}}}, Nullable: true, Metadata: map[string]any{}},
		{Name: "c", Type: DataType{Array: &ArrayType{ElementType: Primitive("integer")}}, Nullable: true, Metadata: map[string]any{}},
		{Name: "e", Type: DataType{Array: &ArrayType{ContainsNull: true, ElementType: DataType{Struct: &StructType{Fields: []StructField{{Name: "d", Type: Primitive("integer"), Metadata: map[string]any{}}}}}}}, Nullable: true, Metadata: map[string]any{}},
		{Name: "f", Type: DataType{Map: &MapType{KeyType: Primitive("string"), ValueType: Primitive("string"), ValueContainsNull: true}}, Nullable: true, Metadata: map[string]any{}},
	}}
	if !reflect.DeepEqual(s, want) || !s.Equal(want) {
		t.Fatalf("parsed %+v", s)
	}
	// Marshal and parse again: the same schema.
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSchema(b)
	if err != nil || !again.Equal(s) {
		t.Fatalf("round trip: %v %s", err, b)
	}
	bad := []struct{ name, text string }{
		{"empty", ""},
		{"not a struct", `"long"`},
		{"array at top", `{"type":"array","elementType":"long","containsNull":false}`},
		{"field without name", `{"type":"struct","fields":[{"type":"long"}]}`},
		{"field without type", `{"type":"struct","fields":[{"name":"a"}]}`},
		{"duplicate names ignoring case", `{"type":"struct","fields":[{"name":"a","type":"long"},{"name":"A","type":"long"}]}`},
		{"unknown nested type", `{"type":"struct","fields":[{"name":"a","type":{"type":"set"}}]}`},
		{"trailing data", `{"type":"struct","fields":[]} {}`},
		{"too deep", strings.Repeat(`{"type":"array","containsNull":true,"elementType":`, 70) + `"long"` + strings.Repeat("}", 70)},
	}
	for _, c := range bad {
		if _, err := ParseSchema([]byte(c.text)); err == nil {
			t.Errorf("%s: ParseSchema accepted %q", c.name, c.text)
		}
	}
}

func TestPaths(t *testing.T) {
	cases := []struct{ rel, escaped string }{
		{"date=2026-11-22/part-00000000000000000001-x.parquet", "date=2026-11-22/part-00000000000000000001-x.parquet"},
		{"region=a b/part.parquet", "region=a%20b/part.parquet"},
		{"ts=2026-11-22 17:40:25/p%.parquet", "ts=2026-11-22%2017:40:25/p%25.parquet"},
	}
	for _, c := range cases {
		if got := EscapePath(c.rel); got != c.escaped {
			t.Errorf("EscapePath(%q) = %q, want %q", c.rel, got, c.escaped)
		}
		if got, err := UnescapePath(c.escaped); err != nil || got != c.rel {
			t.Errorf("UnescapePath(%q) = %q, %v", c.escaped, got, err)
		}
	}
	for _, bad := range []string{"/abs/file", "s3://bucket/x", "../x", "a/../../x", "a//b", "%zz"} {
		if _, err := UnescapePath(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("UnescapePath(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestParseLogName(t *testing.T) {
	cases := []struct {
		name string
		kind LogFile
		v    int64
	}{
		{"00000000000000000000.json", LogCommit, 0},
		{"00000000000000000123.json", LogCommit, 123},
		{"00000000000000000100.checkpoint.parquet", LogCheckpoint, 100},
		{"00000000000000000100.checkpoint.0000000001.0000000002.parquet", LogOther, -1},
		{"00000000000000000100.crc", LogOther, -1},
		{"_last_checkpoint", LogOther, -1},
		{".00000000000000000001.json.abc.tmp", LogOther, -1},
		{"-0000000000000000001.json", LogOther, -1},
		{"0000000000000000001.json", LogOther, -1},
	}
	for _, c := range cases {
		if k, v := ParseLogName(c.name); k != c.kind || v != c.v {
			t.Errorf("ParseLogName(%q) = %d, %d; want %d, %d", c.name, k, v, c.kind, c.v)
		}
	}
	if CommitName(42) != "00000000000000000042.json" || CheckpointName(42) != "00000000000000000042.checkpoint.parquet" {
		t.Fatal("names")
	}
}

func TestStatsTimestamp(t *testing.T) {
	cases := []struct {
		micros int64
		want   string
	}{
		{0, "1970-01-01T00:00:00.000Z"},
		{1795369225123456, "2026-11-22T17:40:25.123Z"},
		{1795369225123999, "2026-11-22T17:40:25.123Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{-1000, "1969-12-31T23:59:59.999Z"},
		{-1001, "1969-12-31T23:59:59.998Z"},
	}
	for _, c := range cases {
		if got := StatsTimestamp(c.micros); got != c.want {
			t.Errorf("StatsTimestamp(%d) = %s, want %s", c.micros, got, c.want)
		}
	}
}
