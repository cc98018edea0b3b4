package decode

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"
)

func TestTimestampFormatsAuto(t *testing.T) {
	base := us("2026-11-22T17:40:25Z")
	cases := []struct {
		name string
		json string // the timestamp as it appears in the payload
		want int64  // µs
	}{
		{"RFC 3339 Z", `"2026-11-22T17:40:25Z"`, base},
		{"lower-case t and z", `"2026-11-22t17:40:25z"`, base},
		{"offset +02:00", `"2026-11-22T19:40:25+02:00"`, base},
		{"offset -05:30", `"2026-11-22T12:10:25-05:30"`, base},
		{"offset +0200", `"2026-11-22T19:40:25+0200"`, base},
		{"offset +02", `"2026-11-22T19:40:25+02"`, base},
		{"offset -00:00", `"2026-11-22T17:40:25-00:00"`, base},
		{"offset across midnight", `"2026-11-23T01:40:25+08:00"`, base},
		{"fraction 1 digit", `"2026-11-22T17:40:25.5Z"`, base + 500000},
		{"fraction 2 digits", `"2026-11-22T17:40:25.12Z"`, base + 120000},
		{"fraction 3 digits", `"2026-11-22T17:40:25.123Z"`, base + 123000},
		{"fraction 4 digits", `"2026-11-22T17:40:25.1234Z"`, base + 123400},
		{"fraction 5 digits", `"2026-11-22T17:40:25.12345Z"`, base + 123450},
		{"fraction 6 digits", `"2026-11-22T17:40:25.123456Z"`, base + 123456},
		{"fraction 7 digits truncated", `"2026-11-22T17:40:25.1234567Z"`, base + 123456},
		{"fraction 8 digits truncated", `"2026-11-22T17:40:25.12345678Z"`, base + 123456},
		{"fraction 9 digits truncated", `"2026-11-22T17:40:25.123456789Z"`, base + 123456},
		{"fraction 12 digits truncated", `"2026-11-22T17:40:25.123456789012Z"`, base + 123456},
		{"fraction with comma", `"2026-11-22T17:40:25,25Z"`, base + 250000},
		{"fraction and offset", `"2026-11-22T19:40:25.000001+02:00"`, base + 1},
		{"ISO without zone is UTC", `"2026-11-22T17:40:25"`, base},
		{"ISO without zone, fraction", `"2026-11-22T17:40:25.123456"`, base + 123456},
		{"ISO without seconds", `"2026-11-22T17:40"`, base - 25e6},
		{"space separator", `"2026-11-22 17:40:25"`, base},
		{"space separator, fraction, short offset (PostgreSQL)", `"2026-11-22 19:40:25.5+02"`, base + 500000},
		{"space before zone", `"2026-11-22 17:40:25 +00:00"`, base},
		{"UTC suffix", `"2026-11-22 17:40:25 UTC"`, base},
		{"date only", `"2026-11-22"`, us("2026-11-22T00:00:00Z")},
		{"leap day", `"2024-02-29T00:00:00Z"`, us("2024-02-29T00:00:00Z")},
		{"leap second carries", `"2016-12-31T23:59:60Z"`, us("2017-01-01T00:00:00Z")},
		{"unix s", `1795369225`, base},
		{"unix s with fraction", `1795369225.123456`, base + 123456},
		{"unix s with long fraction", `1795369225.1234569`, base + 123456},
		{"unix ms", `1795369225123`, base + 123000},
		{"unix ms with fraction", `1795369225123.5`, base + 123500},
		{"unix µs", `1795369225123456`, base + 123456},
		{"unix ns", `1795369225123456789`, base + 123456},
		{"unix s with exponent", `1.795369225e9`, base},
		{"unix ms with exponent", `1.795369225123e12`, base + 123000},
		{"numeric text s", `"1795369225"`, base},
		{"numeric text ms", `"1795369225123"`, base + 123000},
		{"numeric text with spaces", `" 1795369225 "`, base},
		{"numeric text µs", `"1795369225123456"`, base + 123456},
		{"numeric text ns", `"1795369225123456789"`, base + 123456},
	}
	d := newDecoder(t, DefaultConfig(), nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decodeOK(t, d, "x", fmt.Sprintf(`{"sensor_id":"s","value":1,"timestamp":%s}`, c.json))
			if got[0].TS != c.want {
				t.Fatalf("ts %d (%s), want %d (%s)", got[0].TS, fmtUS(got[0].TS), c.want, fmtUS(c.want))
			}
			if got[0].Flags.Has(FlagTSFromReceipt) {
				t.Fatal("flagged ts_from_receipt")
			}
		})
	}
}

func TestTimestampRejected(t *testing.T) {
	cases := []string{
		`"2026-13-01T00:00:00Z"`, `"2026-00-10T00:00:00Z"`, `"2026-04-31T00:00:00Z"`, `"2027-02-29T00:00:00Z"`,
		`"2026-11-22T24:00:00Z"`, `"2026-11-22T12:60:00Z"`, `"2026-11-22T12:00:61Z"`, `"2026-11-22T12:00:00+24:00"`,
		`"2026-11-22T12:00:00+02:60"`, `"2026-11-22T12:00:00."`, `"2026-11-22T12:00:00Zjunk"`, `"2026-11-22X12:00:00"`,
		`"2026-11-22T1:00:00"`, `"26-11-22"`, `"2026/11/22 12:00:00"`, `"2026-11-22T12:00:00 "`, `"2026-11-22T12:00:00+2"`,
		`"abc"`, `""`, `"1795369225x"`, `"."`, `"-"`, `"1e"`, `true`, `{"a":1}`, `[1]`, `99999999999999999999`,
		`"Sun, 22 Nov 2026 17:40:25 GMT"`,
	}
	d := newDecoder(t, DefaultConfig(), nil)
	for _, c := range cases {
		t.Run(c, func(t *testing.T) {
			got, err := d.Decode(nil, "x", []byte(fmt.Sprintf(`{"sensor_id":"s","value":1,"timestamp":%s}`, c)), recv)
			if err == nil {
				t.Fatalf("decoded %+v (%s)", got, fmtUS(got[0].TS))
			}
			if r := reasonOf(t, err); r != ReasonBadTimestamp {
				t.Fatalf("reason %s, want bad_timestamp", r)
			}
		})
	}
}

func TestTimestampFormatsConfigured(t *testing.T) {
	base := us("2026-11-22T17:40:25Z")
	cases := []struct {
		format string
		json   string
		want   int64 // 0 = bad_timestamp
	}{
		{"unix_s", `1795369225`, base},
		{"unix_s", `"1795369225.5"`, base + 500000},
		{"unix_s", `10000000000000`, 0}, // out of the int64 µs range
		{"unix_ms", `1795369225123`, base + 123000},
		{"unix_ms", `1795369225`, 0}, // 1970: too old, but read as ms
		{"unix_us", `1795369225123456`, base + 123456},
		{"unix_us", `1795369225123456.9`, base + 123456},
		{"unix_ns", `1795369225123456789`, base + 123456},
		{"unix_ns", `"1795369225123456789"`, base + 123456},
		{"unix_s", `"2026-11-22T17:40:25Z"`, 0},
		{"rfc3339", `"2026-11-22T19:40:25+02:00"`, base},
		{"rfc3339", `"2026-11-22 17:40:25Z"`, base},
		{"rfc3339", `"2026-11-22T17:40:25"`, 0},    // no zone
		{"rfc3339", `"2026-11-22T17:40Z"`, 0},      // no seconds
		{"rfc3339", `"2026-11-22"`, 0},             // no time
		{"rfc3339", `1795369225`, 0},               // a number
		{"iso8601", `"2026-11-22T17:40:25"`, base}, // UTC
		{"iso8601", `"2026-11-22T17:40:25.25+00:00"`, base + 250000},
		{"iso8601", `"1795369225"`, 0},
		{"iso8601", `1795369225`, 0},
		{"02/01/2006 15:04:05", `"22/11/2026 17:40:25"`, base},
		{"02/01/2006 15:04:05.000 -0700", `"22/11/2026 19:40:25.250 +0200"`, base + 250000},
		{"02/01/2006 15:04:05", `"2026-11-22T17:40:25Z"`, 0},
		{"02/01/2006 15:04:05", `1795369225`, 0},
	}
	for _, c := range cases {
		t.Run(c.format+" "+c.json, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TimestampFormat = c.format
			cfg.MinTimestamp = time.Unix(0, 0) // so that "read as ms" cases reach the format check
			d := newDecoder(t, cfg, nil)
			got, err := d.Decode(nil, "x", []byte(fmt.Sprintf(`{"sensor_id":"s","value":1,"timestamp":%s}`, c.json)), recv)
			switch {
			case c.want == 0 && c.format == "unix_ms" && err == nil:
				if got[0].TS != 1795369225000 {
					t.Fatalf("ts %d, want 1795369225000", got[0].TS)
				}
			case c.want == 0:
				if err == nil {
					t.Fatalf("decoded %s, want bad_timestamp", fmtUS(got[0].TS))
				}
				if r := reasonOf(t, err); r != ReasonBadTimestamp {
					t.Fatalf("reason %s, want bad_timestamp", r)
				}
			case err != nil:
				t.Fatal(err)
			case got[0].TS != c.want:
				t.Fatalf("ts %s, want %s", fmtUS(got[0].TS), fmtUS(c.want))
			}
		})
	}
}

// TestParseISOMatchesTime checks the hand-written reader against time.Parse over many instants.
func TestParseISOMatchesTime(t *testing.T) {
	layouts := []string{time.RFC3339Nano, "2006-01-02T15:04:05.000000-07:00", "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05.999999999"}
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600)}
	start := time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC)
	for i := 0; i < 20000; i++ {
		tm := start.Add(time.Duration(i) * 400_000_000_123_457) // ~4.6 days and an odd fraction apart
		for _, z := range zones {
			for _, l := range layouts {
				s := tm.In(z).Format(l)
				want, err := time.Parse(l, s)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := parseISO(s, false)
				if !ok || got != want.UnixMicro() {
					t.Fatalf("parseISO(%q) = %d, %v; want %d", s, got, ok, want.UnixMicro())
				}
			}
		}
	}
}

func TestParseTSFormat(t *testing.T) {
	cases := []struct {
		in   string
		kind tsKind
		ok   bool
	}{
		{"", tsAuto, true}, {"auto", tsAuto, true}, {"AUTO", tsAuto, true}, {"rfc3339", tsRFC3339, true},
		{"iso8601", tsISO8601, true}, {"unix_s", tsUnixS, true}, {"unix_ms", tsUnixMS, true},
		{"unix_us", tsUnixUS, true}, {"unix_ns", tsUnixNS, true}, {"2006-01-02", tsLayout, true},
		{"Jan _2 15:04:05", tsLayout, true}, {"unix", 0, false}, {"yyyy-mm-dd", 0, false}, {"epoch_ms", 0, false},
	}
	for _, c := range cases {
		f, err := parseTSFormat(c.in)
		if (err == nil) != c.ok || c.ok && f.kind != c.kind {
			t.Errorf("parseTSFormat(%q) = %+v, %v; want kind %d ok %v", c.in, f, err, c.kind, c.ok)
		}
	}
}

// TestFastFloatExact checks the fast path against strconv over many decimals.
func TestFastFloatExact(t *testing.T) {
	x := uint64(88172645463325252)
	for i := 0; i < 200000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		digits := strconv.FormatUint(x%1_000_000_000_000_000, 10) // up to 15 digits
		if n := int(x>>60) % (len(digits) + 1); n > 0 {
			digits = digits[:len(digits)-n] + "." + digits[len(digits)-n:]
		}
		if x&1 == 1 {
			digits = "-" + digits
		}
		got, ok := fastFloat([]byte(digits))
		want, err := strconv.ParseFloat(digits, 64)
		if !ok || err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("fastFloat(%q) = %v, %v; strconv says %v, %v", digits, got, ok, want, err)
		}
	}
	for _, s := range []string{"", "-", ".", "1e5", "+1", "1.2.3", "1234567890123456", "Inf", "0x1"} {
		if f, ok := fastFloat([]byte(s)); ok {
			t.Errorf("fastFloat(%q) = %v, want it left to strconv", s, f)
		}
	}
}
