package delta

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseCommit(f *testing.F) {
	valid, _ := EncodeCommit(append(testCreate(), Action{Add: &Add{Path: "date=2026-11-22/p.parquet", PartitionValues: map[string]string{"date": "2026-11-22"}, Size: 1, DataChange: true, Stats: `{"numRecords":1}`}},
		Action{Txn: &Txn{AppID: "decoder-p0", Version: 9}}))
	f.Add([]byte{})
	f.Add(valid)
	f.Add(valid[:len(valid)/2])                                    // truncated
	f.Add(append(append([]byte{}, valid...), "{\"add\":{\"pa"...)) // valid plus garbage
	f.Add([]byte(`{"add":{"path":"` + strings.Repeat("x", 1<<16) + `","size":1}}`))
	f.Add([]byte(`{"remove":{"path":"a"}}` + "\n" + `{"cdc":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		actions, err := ParseCommit(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		known := actions[:0:0]
		for _, a := range actions {
			if a.count() == 1 {
				known = append(known, a)
			}
		}
		enc, err := EncodeCommit(known)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := ParseCommit(enc)
		if err != nil {
			t.Fatalf("parse re-encoded: %v\n%s", err, enc)
		}
		if len(known) == 0 {
			return
		}
		if !reflect.DeepEqual(again, known) {
			t.Fatalf("round trip changed the actions:\n%+v\n%+v", known, again)
		}
	})
}

func FuzzParseSchema(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte(testSchema))
	f.Add([]byte(testSchema[:40]))
	f.Add([]byte(testSchema + "garbage"))
	f.Add([]byte(`{"type":"struct","fields":[{"name":"a","type":` + strings.Repeat(`{"type":"array","containsNull":true,"elementType":`, maxSchemaDepth-1) + `"long"` + strings.Repeat("}", maxSchemaDepth-1) + `,"nullable":true}]}`))
	f.Add([]byte(`{"type":"struct","fields":[{"name":"m","type":{"type":"map","keyType":"string","valueType":{"type":"struct","fields":[]},"valueContainsNull":true},"nullable":true,"metadata":{"k":[1,{"x":null}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSchema(data)
		if err != nil {
			return
		}
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal a parsed schema: %v", err)
		}
		again, err := ParseSchema(b)
		if err != nil || !again.Equal(s) {
			t.Fatalf("round trip: %v\n%s", err, b)
		}
	})
}

func FuzzParseLastCheckpoint(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte(`{"version":20,"size":25,"sizeInBytes":3000,"numOfAddFiles":19}`))
	f.Add([]byte(`{"version":20,"si`))
	f.Add([]byte(`{"version":9223372036854775807,"size":9223372036854775807}`))
	f.Add([]byte(`{"version":20,"size":25}{"x"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lc, err := ParseLastCheckpoint(data)
		if err == nil && (lc.Version < 0 || lc.Size < 0) {
			t.Fatalf("accepted %+v", lc)
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	s := newSnapshot(true)
	if err := s.apply(0, append(testCreate(), Action{Add: &Add{Path: "p", PartitionValues: map[string]string{"date": "2026-11-22"}, Size: 3, DataChange: true}},
		Action{Txn: &Txn{AppID: "a", Version: 1}})); err != nil {
		f.Fatal(err)
	}
	valid, _, err := EncodeCheckpoint(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add(valid)
	f.Add(valid[:len(valid)-9])                        // truncated footer
	f.Add(append(append([]byte{}, valid...), 0, 1, 2)) // valid plus garbage
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := DecodeCheckpoint(data, 5)
		if err != nil {
			return
		}
		if snap.Version() != 5 || snap.Metadata() == nil || snap.Protocol() == nil {
			t.Fatalf("decoded a snapshot without metadata: %+v", snap)
		}
	})
}

func FuzzUnescapePath(f *testing.F) {
	for _, s := range []string{"", "date=2026-11-22/p.parquet", "a%2", "a%20b/../c", strings.Repeat("a/", 1000) + "b", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, err := UnescapePath(p)
		if err != nil {
			return
		}
		if strings.HasPrefix(rel, "/") || strings.Contains("/"+rel+"/", "/../") {
			t.Fatalf("UnescapePath(%q) = %q escapes the table", p, rel)
		}
		if again, err := UnescapePath(EscapePath(rel)); err != nil || again != rel {
			t.Fatalf("EscapePath(%q) does not round trip: %q, %v", rel, again, err)
		}
	})
}

func FuzzParseStats(f *testing.F) {
	valid := `{"numRecords":20,"minValues":{"sensor_id":"a","ts":"2026-11-22T23:59:00.000Z","value":0},"maxValues":{"sensor_id":"b","value":4.75},"nullCount":{"unit":10}}`
	for _, s := range []string{"", valid, valid[:30], valid + "}garbage", `{"numRecords":9223372036854775807,"nullCount":{"` + strings.Repeat("c", 1<<12) + `":1}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseStats(text)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		out, err := s.JSON()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := ParseStats(out)
		if err != nil || again.NumRecords != s.NumRecords || len(again.NullCount) != len(s.NullCount) {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
	})
}
