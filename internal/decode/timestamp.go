package decode

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// tsKind is how a timestamp field is read.
type tsKind uint8

const (
	tsAuto    tsKind = iota // ISO 8601 / RFC 3339 text, or a number (or numeric text) by magnitude
	tsRFC3339               // ISO text with a zone
	tsISO8601               // ISO text, zone optional (UTC)
	tsLayout                // a Go time layout
	tsUnixS
	tsUnixMS
	tsUnixUS
	tsUnixNS
)

type tsFormat struct {
	kind   tsKind
	layout string // tsLayout
}

// parseTSFormat parses a timestamp_format setting ("" is auto).
func parseTSFormat(s string) (tsFormat, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return tsFormat{kind: tsAuto}, nil
	case "rfc3339":
		return tsFormat{kind: tsRFC3339}, nil
	case "iso8601":
		return tsFormat{kind: tsISO8601}, nil
	case "unix_s":
		return tsFormat{kind: tsUnixS}, nil
	case "unix_ms":
		return tsFormat{kind: tsUnixMS}, nil
	case "unix_us":
		return tsFormat{kind: tsUnixUS}, nil
	case "unix_ns":
		return tsFormat{kind: tsUnixNS}, nil
	}
	// A Go layout: it must contain reference elements, and read back what it writes.
	ref := time.Date(2026, 11, 22, 17, 40, 25, 123456789, time.UTC)
	out := ref.Format(s)
	if out == s {
		return tsFormat{}, fmt.Errorf("%q is neither a known format nor a Go layout (it has no element of 2006-01-02T15:04:05Z07:00)", s)
	}
	if _, err := time.Parse(s, out); err != nil {
		return tsFormat{}, fmt.Errorf("%q is not a usable Go layout: %v", s, err)
	}
	return tsFormat{kind: tsLayout, layout: s}, nil
}

// parseTSText reads a timestamp given as JSON text. It returns Unix µs.
func parseTSText(s string, f tsFormat) (int64, bool) {
	switch f.kind {
	case tsAuto:
		if us, ok := parseISO(s, false); ok {
			return us, true
		}
		return parseUnix(strings.TrimSpace(s), 0)
	case tsRFC3339:
		return parseISO(s, true)
	case tsISO8601:
		return parseISO(s, false)
	case tsLayout:
		t, err := time.Parse(f.layout, s)
		if err != nil {
			return 0, false
		}
		return t.UnixMicro(), true
	default:
		return parseUnix(strings.TrimSpace(s), f.kind)
	}
}

// parseTSNumber reads a timestamp given as a JSON number (its text). It returns Unix µs.
func parseTSNumber(s string, f tsFormat) (int64, bool) {
	switch f.kind {
	case tsAuto:
		return parseUnix(s, 0)
	case tsUnixS, tsUnixMS, tsUnixUS, tsUnixNS:
		return parseUnix(s, f.kind)
	}
	return 0, false
}

// Magnitude bounds for numbers read by magnitude: seconds, then ms, µs, ns. Each unit reads the years
// 1973 to 5138 unambiguously.
const (
	maxAutoS  = 1e11
	maxAutoMS = 1e14
	maxAutoUS = 1e17
)

// parseUnix reads decimal text (sign, digits, fraction, exponent) as a Unix time in unit, or by
// magnitude when unit is 0 (tsAuto). Without an exponent it is exact to the microsecond (digits beyond
// are truncated); with one it goes through float64.
func parseUnix(s string, unit tsKind) (int64, bool) {
	if s == "" {
		return 0, false
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	i, n := 0, uint64(0)
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n > (math.MaxInt64-9)/10 {
			return 0, false // out of range
		}
		n = n*10 + uint64(s[i]-'0')
	}
	intDigits := i
	frac := ""
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		frac, i = s[i+1:j], j
	}
	if intDigits == 0 && frac == "" {
		return 0, false
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return 0, false
		}
		return parseUnixFloat(s, neg, unit)
	}
	if unit == tsAuto {
		switch {
		case n < maxAutoS:
			unit = tsUnixS
		case n < maxAutoMS:
			unit = tsUnixMS
		case n < maxAutoUS:
			unit = tsUnixUS
		default:
			unit = tsUnixNS
		}
	}
	var mul, limit uint64 // limit: the largest n that fits once multiplied (constants: no division)
	var fracDigits int
	switch unit {
	case tsUnixS:
		mul, limit, fracDigits = 1e6, math.MaxInt64/1_000_000, 6
	case tsUnixMS:
		mul, limit, fracDigits = 1e3, math.MaxInt64/1_000, 3
	case tsUnixUS:
		mul, limit = 1, math.MaxInt64
	case tsUnixNS:
		us := int64(n / 1000)
		if neg {
			us = -us
		}
		return us, true
	}
	if n > limit {
		return 0, false
	}
	us := n * mul
	for k := 0; k < fracDigits; k++ {
		d := uint64(0)
		if k < len(frac) {
			d = uint64(frac[k] - '0')
		}
		mul /= 10
		us += d * mul
	}
	if us > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(us), true
	}
	return int64(us), true
}

// parseUnixFloat handles numbers with an exponent.
func parseUnixFloat(s string, neg bool, unit tsKind) (int64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	if unit == tsAuto {
		switch {
		case f < maxAutoS:
			unit = tsUnixS
		case f < maxAutoMS:
			unit = tsUnixMS
		case f < maxAutoUS:
			unit = tsUnixUS
		default:
			unit = tsUnixNS
		}
	}
	switch unit {
	case tsUnixS:
		f *= 1e6
	case tsUnixMS:
		f *= 1e3
	case tsUnixNS:
		f /= 1e3
	}
	f = math.Floor(f)
	if f >= math.MaxInt64 {
		return 0, false
	}
	if neg {
		f = -f
	}
	return int64(f), true
}

// parseISO reads an ISO 8601 / RFC 3339 date-time and returns Unix µs:
//
//	YYYY-MM-DD[(T|t| )hh:mm[:ss[(.|,)fraction]][[ ]zone]]    zone: Z, z, ±hh:mm, ±hhmm, ±hh, UTC, GMT
//
// A fraction may have any number of digits (beyond six, truncated to the µs). Without a zone the time
// is UTC; needZone (rfc3339) requires a zone and the seconds. Written by hand: time.Parse needs one
// layout per variant and costs ~10x more on the hot path.
func parseISO(s string, needZone bool) (int64, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	year, ok1 := two(s[0], s[1])
	y2, ok4 := two(s[2], s[3])
	year = year*100 + y2
	month, ok2 := two(s[5], s[6])
	day, ok3 := two(s[8], s[9])
	if !ok1 || !ok2 || !ok3 || !ok4 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return 0, false
	}
	days := daysFromCivil(year, month, day)
	s = s[10:]
	if s == "" {
		return days * 86400 * 1e6, !needZone
	}
	if s[0] != 'T' && s[0] != 't' && s[0] != ' ' {
		return 0, false
	}
	s = s[1:]
	if len(s) < 5 || s[2] != ':' {
		return 0, false
	}
	hour, ok1 := two(s[0], s[1])
	minute, ok2 := two(s[3], s[4])
	if !ok1 || !ok2 || hour > 23 || minute > 59 {
		return 0, false
	}
	s = s[5:]
	sec, frac := int64(0), int64(0)
	hasSec := false
	if len(s) >= 3 && s[0] == ':' {
		v, ok := two(s[1], s[2])
		if !ok || v > 60 { // 60: a leap second, carried into the next minute
			return 0, false
		}
		sec, hasSec, s = v, true, s[3:]
		if len(s) > 0 && (s[0] == '.' || s[0] == ',') {
			j := 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				if j <= 6 {
					frac = frac*10 + int64(s[j]-'0')
				}
				j++
			}
			if j == 1 {
				return 0, false
			}
			for k := j; k <= 6; k++ {
				frac *= 10
			}
			s = s[j:]
		}
	}
	if needZone && !hasSec {
		return 0, false
	}
	if len(s) > 1 && s[0] == ' ' {
		s = s[1:]
	}
	offset, hasZone, ok := parseZone(s)
	if !ok || needZone && !hasZone {
		return 0, false
	}
	secs := days*86400 + hour*3600 + minute*60 + sec - offset
	return secs*1e6 + frac, true
}

// parseZone reads what follows the time: nothing, Z, UTC/GMT, or ±hh[[:]mm]. It returns the offset east
// of UTC in seconds.
func parseZone(s string) (offset int64, has, ok bool) {
	switch s {
	case "":
		return 0, false, true
	case "Z", "z", "UTC", "GMT":
		return 0, true, true
	}
	if s[0] != '+' && s[0] != '-' || len(s) < 3 {
		return 0, false, false
	}
	h, okh := two(s[1], s[2])
	var m int64
	okm := true
	switch rest := s[3:]; {
	case rest == "":
	case len(rest) == 3 && rest[0] == ':':
		m, okm = digits(rest[1:])
	case len(rest) == 2:
		m, okm = digits(rest)
	default:
		return 0, false, false
	}
	if !okh || !okm || h > 23 || m > 59 {
		return 0, false, false
	}
	offset = h*3600 + m*60
	if s[0] == '-' {
		offset = -offset
	}
	return offset, true, true
}

// two parses two ASCII digits.
func two(a, b byte) (int64, bool) {
	a, b = a-'0', b-'0'
	return int64(a)*10 + int64(b), a <= 9 && b <= 9
}

// digits parses s as an unsigned decimal made only of ASCII digits.
func digits(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func daysIn(year, month int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian date (year 0..9999), after
// Howard Hinnant's days_from_civil.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
