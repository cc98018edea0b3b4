package decode

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/valyala/fastjson"
)

// numericFields appends every number field of obj (except reserved ones) as a reading named by its
// key (general path).
func (d *Decoder) numericFields(obj *fastjson.Value, at string, reserved map[string]bool) *Error {
	o, _ := obj.Object()
	var e *Error
	o.Visit(func(k []byte, x *fastjson.Value) {
		if e != nil || x.Type() != fastjson.TypeNumber || reserved[string(k)] {
			return
		}
		d.num = x.MarshalTo(d.num[:0])
		e = d.addNamed(k, d.num, at)
	})
	return e
}

// addNamed appends the number literal raw as a reading named key (found in the object at at).
func (d *Decoder) addNamed(key, raw []byte, at string) *Error {
	v, e := d.numberLit(raw, at, key)
	if e != nil {
		return e
	}
	name, ok := d.in.bytes(key)
	if !ok {
		return &Error{Reason: ReasonBadField, Detail: fmt.Sprintf("the field name %s is not a metric name (UTF-8, 1 to %d bytes)", quote(string(key)), maxText)}
	}
	d.vals = append(d.vals, namedValue{metric: name, v: v})
	return nil
}

// number reads a value: a JSON number, a numeric string, or a boolean (1 or 0). The value's place is
// at, followed by "." and key when key is not nil (built only for an error).
func (d *Decoder) number(j *jval, at string, key []byte) (float64, *Error) {
	switch j.kind {
	case kNumber:
		return d.numberLit(d.numText(j), at, key)
	case kString:
		b := j.b
		s := trimSpace(b2s(b))
		kind := numericText(s)
		if kind == textNumber {
			f, err := strconv.ParseFloat(s, 64)
			if math.IsInf(f, 0) {
				kind = textNonFinite
			} else if err == nil || errors.Is(err, strconv.ErrRange) {
				return f, nil
			}
		}
		if kind == textNonFinite {
			return 0, &Error{Reason: ReasonValueNotFinite, Detail: fmt.Sprintf("the value at %q is the text %s, not a finite number", loc(at, key), quote(string(b)))}
		}
		return 0, &Error{Reason: ReasonValueNotNumber, Detail: fmt.Sprintf("the value at %q is the text %s, not a number", loc(at, key), quote(string(b)))}
	case kTrue:
		return 1, nil
	case kFalse:
		return 0, nil
	default:
		return 0, &Error{Reason: ReasonValueNotNumber, Detail: fmt.Sprintf("the value at %q is %s, not a number", loc(at, key), kindName(j.kind))}
	}
}

// numberLit converts a JSON number literal (as fastjson lets it through: possibly NaN, Inf or malformed).
func (d *Decoder) numberLit(raw []byte, at string, key []byte) (float64, *Error) {
	if f, ok := fastFloat(raw); ok {
		return f, nil
	}
	f, err := strconv.ParseFloat(b2s(raw), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, &Error{Reason: ReasonInvalidJSON, Detail: fmt.Sprintf("the number at %q is malformed: %s", loc(at, key), quote(string(raw)))}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, &Error{Reason: ReasonValueNotFinite, Detail: fmt.Sprintf("the value at %q is %s, not a finite number", loc(at, key), quote(string(raw)))}
	}
	return f, nil
}

func loc(at string, key []byte) string {
	switch {
	case key == nil:
		return at
	case at == "":
		return string(key)
	}
	return at + "." + string(key)
}

// fastFloat reads [-]digits[.digits] with at most 15 significant digits exactly: the digits and the
// power of ten are both exact float64s, so one division rounds correctly (Clinger's fast path, which
// strconv also takes, after more checks). Anything else is left to strconv.
func fastFloat(s []byte) (float64, bool) {
	i, neg := 0, false
	if len(s) > 0 && s[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	nd, frac := 0, -1
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if nd++; nd > 15 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if nd == 0 {
		return 0, false
	}
	f := float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
}

var pow10 = [16]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

type textKind uint8

const (
	textOther textKind = iota
	textNumber
	textNonFinite
)

// numericText classifies trimmed text: a decimal number ([sign]digits[.digits][e[sign]digits], checked
// loosely here and exactly by strconv), a spelled-out non-finite value (nan, inf, infinity), or other.
func numericText(s string) textKind {
	if s == "" {
		return textOther
	}
	t := s
	if t[0] == '+' || t[0] == '-' {
		t = t[1:]
	}
	switch len(t) {
	case 3, 8:
		if equalFold(t, "nan") || equalFold(t, "inf") || equalFold(t, "infinity") {
			return textNonFinite
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return textOther
		}
	}
	return textNumber
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold compares ASCII s with lower-case ASCII lower, ignoring case.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
