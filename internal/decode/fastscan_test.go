package decode

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-project/sluice/internal/sensor"
)

func TestFastScanAcceptsOrDeclines(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		accept  bool
	}{
		{"shape 1", benchShapes[0].payload, true},
		{"shape 2", benchShapes[1].payload, true},
		{"shape 3", benchShapes[2].payload, true},
		{"shape 4", benchShapes[3].payload, true},
		{"multi-value", benchShapes[4].payload, true},
		{"empty object", `{}`, true},
		{"white space around", " \r\n\t{ \"a\" : [ 1 , { } , [ ] , \"x\" , true , false , null ] } \n", true},
		{"escapes in an ignored string", `{"x":"\u00e9\n\"\\\/"}`, true},
		{"escapes in an ignored nested string", `{"x":{"y":["\ud83d\ude00"]}}`, true},
		{"numbers", `{"a":0,"b":-0.5,"c":1e10,"d":1E-3,"e":-12.5e+2}`, true},
		{"control byte in a string (as fastjson)", "{\"x\":\"a\x01b\"}", true},
		{"array root", `[{"a":1}]`, false},
		{"number root", `1`, false},
		{"empty", ``, false},
		{"white space only", `   `, false},
		{"truncated", `{"a":1`, false},
		{"truncated string", `{"a":"x`, false},
		{"trailing garbage", `{"a":1} x`, false},
		{"trailing comma", `{"a":1,}`, false},
		{"missing colon", `{"a" 1}`, false},
		{"unquoted key", `{a:1}`, false},
		{"escaped key", `{"a\n":1}`, false},
		{"escape in a read string", `{"sensor_id":"a\u0041","value":1}`, false},
		{"escape in metadata.unit", `{"metadata":{"unit":"\u00b0C"}}`, false},
		{"bad escape", `{"x":"\q"}`, false},
		{"short unicode escape", `{"x":"\u12"}`, false},
		{"NaN", `{"value":NaN}`, false},
		{"Inf", `{"value":-Inf}`, false},
		{"leading zero", `{"value":01}`, false},
		{"plus sign", `{"value":+1}`, false},
		{"bare dot", `{"value":1.}`, false},
		{"leading dot", `{"value":.5}`, false},
		{"bare exponent", `{"value":1e}`, false},
		{"minus alone", `{"value":-}`, false},
		{"two dots", `{"value":1.2.3}`, false},
		{"bad literal", `{"value":tru}`, false},
		{"nested too deep", `{"a":` + strings.Repeat("[", maxFastDepth) + strings.Repeat("]", maxFastDepth) + `}`, false},
		{"nested just enough", `{"a":` + strings.Repeat("[", maxFastDepth-1) + strings.Repeat("]", maxFastDepth-1) + `}`, true},
	}
	var f fastScan
	for _, c := range cases {
		if got := f.run([]byte(c.payload)); got != c.accept {
			t.Errorf("%s: run(%.60q) = %v, want %v", c.name, c.payload, got, c.accept)
		}
	}
}

func TestFastScanSlots(t *testing.T) {
	var f fastScan
	p := `{"sensor_id":"1","id":"x","sensor_id":"dup","timestamp":"2026-11-22T17:40:25","value":23,"metadata":{"lat":10,"unit":"C","type":"temperature","type":"again"},` +
		`"metadata":{"unit":"F"},"values":{"a":1,"s":"x","b":2},"readings":[1],"n":-4.5,"o":{"deep":7}}`
	if !f.run([]byte(p)) {
		t.Fatal("declined")
	}
	str := func(slot int) string {
		if f.slots[slot].kind != kString {
			return "<not text>"
		}
		return string(f.bytes(f.slots[slot]))
	}
	if got := str(autoSlot("sensor_id")); got != "1" {
		t.Errorf("sensor_id = %q, want the first occurrence", got)
	}
	if got := str(fslotMetaType); got != "temperature" {
		t.Errorf("metadata.type = %q", got)
	}
	if got := str(fslotMetaUnit); got != "C" {
		t.Errorf("metadata.unit = %q, want the first metadata's", got)
	}
	if j := f.slots[autoSlot("value")]; j.kind != kNumber || string(f.bytes(j)) != "23" {
		t.Errorf("value = %+v", j)
	}
	if j := f.slots[slotReadings]; j.kind != kArray {
		t.Errorf("readings = %+v", j)
	}
	var nums []string
	for _, n := range f.nums {
		nums = append(nums, string(f.bytes(n.key))+"="+string(f.bytes(n.raw))+"@"+strconv.Itoa(int(n.group)))
	}
	want := []string{"value=23@0", "a=1@1", "b=2@1", "n=-4.5@0"}
	if !reflect.DeepEqual(nums, want) {
		t.Errorf("nums %v, want %v", nums, want)
	}
	wantMask := uint32(pathBit)
	for _, n := range []string{"sensor_id", "id", "timestamp", "value", "metadata", "values", "readings"} {
		wantMask |= 1 << autoSlot(n)
	}
	if f.mask != wantMask {
		t.Errorf("mask %b, want %b", f.mask, wantMask)
	}
}

func TestAutoSlotNames(t *testing.T) {
	for i, n := range autoSlotNames {
		if autoSlot(n) != i {
			t.Errorf("autoSlot(%q) = %d, want %d", n, autoSlot(n), i)
		}
	}
	for _, n := range []string{"metadata", "values", "readings"} {
		if autoSlot(n) != map[string]int{"metadata": slotMetadata, "values": slotValues, "readings": slotReadings}[n] {
			t.Errorf("slot constant for %s is stale", n)
		}
	}
	if autoSlot("Value") != -1 || autoSlot("") != -1 {
		t.Error("autoSlot matched a name it should not")
	}
}

// FuzzFastPath checks that the fast scanner never changes a verdict: every payload decodes to the same
// readings, or the same error, with and without it.
func FuzzFastPath(f *testing.F) {
	for _, s := range benchShapes {
		f.Add([]byte(s.payload), s.topic)
	}
	for _, s := range []string{
		`{"sensor_id":"a","value":"abc"}`, `{"sensor_id":"a","value":"NaN"}`, `{"sensor_id":"a","value":NaN}`, `{"sensor_id":"a","value":1.2.3}`,
		`{"value":1}`, `{"sensor_id":17,"ts":1795369225,"value":true}`, `{"sensor_id":{"a":1},"id":"b","v":1}`,
		`{"sensor_id":"a","timestamp":"2026-02-30","value":1}`, `{"sensor_id":"a","timestamp":true,"value":1}`,
		`{"sensor_id":"a","timestamp":"1970-01-02T00:00:00","value":1}`, `{"sensor_id":"a","ts":99999999999999999999,"value":1}`,
		`{"sensor_id":"a","temperature":21.5,"humidity":40,"lat":1,"values":{"co2":400,"x":"y"},"readings":{"rpm":3}}`,
		`{"sensor_id":"a","values":[1],"readings":{"rpm":1e999}}`, `{"sensor_id":"a","a":1,"a":2}`,
		`{"sensor_id":"a","value":1,"type":5,"metadata":{"type":"t","unit":7},"units":"u"}`,
		"{\"sensor_id\":\"a\xff\",\"value\":1}", "{\"sensor_id\":\"a\",\"\xff\":1}", `{"sensor_id":"` + strings.Repeat("s", 300) + `","value":1}`,
		`{"sensor_id":"a","value":1e-400}`, `{"sensor_id":"a","value":12345678901234567890}`, `{"sensor_id":"a","value":-0}`,
		`{"sensor_id":"a","metadata":"x","value":1}`, `{"sensor_id":"a","metadata":{"type":{"x":1}},"value":1}`,
		`{}`, `[]`, `[1]`, ` `, `{"a":`, `{"sensor_id":"\u0041","value":1}`,
	} {
		f.Add([]byte(s), "sensors")
		f.Add([]byte(s), "plant/a/b/p-1/flow")
	}
	reg := sensor.New([]sensor.Sensor{{ID: "a", Type: "temperature", Unit: "C", Min: 0, Max: 45, HasRange: true}}, nil)
	cfg := DefaultConfig()
	cfg.Mappings = []Mapping{{Topic: "auto/+sensor_id", TimestampFormat: "unix_ms"}} // fastOK: every path is a default one
	fast, err := New(cfg, reg)
	if err != nil {
		f.Fatal(err)
	}
	slow, _ := New(cfg, reg)
	slow.noFast = true
	f.Fuzz(func(t *testing.T, payload []byte, topic string) {
		a, ea := fast.Decode(nil, topic, payload, recv)
		b, eb := slow.Decode(nil, topic, payload, recv)
		var pa, pb *Error
		errors.As(ea, &pa)
		errors.As(eb, &pb)
		if (ea == nil) != (eb == nil) || pa != nil && (pb == nil || *pa != *pb) {
			t.Fatalf("errors differ:\nfast:    %v\ngeneral: %v", ea, eb)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("readings differ:\nfast:    %+v\ngeneral: %+v", a, b)
		}
	})
}

// TestFastScanStr checks the eight-bytes-at-a-time string scan against a plain one, with the quote,
// a backslash escape or the end of input at every position of strings up to 40 bytes.
func TestFastScanStr(t *testing.T) {
	ref := func(s []byte, i int) (int, bool, bool) {
		esc := false
		for i < len(s) {
			switch s[i] {
			case '"':
				return i, esc, true
			case '\\':
				if i+1 >= len(s) || !strings.ContainsRune(`"\/bfnrtu`, rune(s[i+1])) {
					return 0, false, false
				}
				esc = true
				if s[i+1] == 'u' {
					if i+6 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
						return 0, false, false
					}
					i += 6
					continue
				}
				i += 2
			default:
				i++
			}
		}
		return 0, false, false
	}
	var f fastScan
	fills := []byte{'a', 0x22 ^ 0x80, 0x5c ^ 0x01, 0xff, 0x21, 0x23, 0x5b, 0x5d}
	for n := 0; n <= 40; n++ {
		for pos := 0; pos <= n; pos++ {
			for _, tail := range []string{`"`, `\"x"`, `\n"`, `\u00e9"`, `\u00"`, `\q"`, `\`, ``} {
				for _, fill := range fills {
					b := []byte(strings.Repeat(string(fill), pos) + tail + strings.Repeat("b", n-pos) + `"`)
					f.s = b
					e1, s1, ok1 := f.str(0)
					e2, s2, ok2 := ref(b, 0)
					if e1 != e2 || s1 != s2 || ok1 != ok2 {
						t.Fatalf("str(%q) = %d %v %v, want %d %v %v", b, e1, s1, ok1, e2, s2, ok2)
					}
				}
			}
		}
	}
}
