package decode

import (
	"encoding/binary"
	"math/bits"

	"github.com/valyala/fastjson"
)

// jkind is the kind of a JSON value as the field rules see it.
type jkind uint8

const (
	kAbsent jkind = iota
	kNull
	kString
	kNumber
	kTrue
	kFalse
	kObject
	kArray
)

// jval is a field's value: its kind and, for text, the unescaped bytes or, for a number, its literal.
// On the general path a number's literal and an object stay in v (read through fastjson on use).
type jval struct {
	kind jkind
	b    []byte
	v    *fastjson.Value
}

func kindOf(t fastjson.Type) jkind {
	switch t {
	case fastjson.TypeString:
		return kString
	case fastjson.TypeNumber:
		return kNumber
	case fastjson.TypeTrue:
		return kTrue
	case fastjson.TypeFalse:
		return kFalse
	case fastjson.TypeObject:
		return kObject
	case fastjson.TypeArray:
		return kArray
	}
	return kNull
}

// The fast scanner's extra slots: metadata.type and metadata.unit.
const (
	fslotMetaType = numSlots
	fslotMetaUnit = numSlots + 1
	numFastSlots  = numSlots + 2

	slotMetadata = 19 // autoSlot("metadata")
	slotValues   = 20 // autoSlot("values")
	slotReadings = 21 // autoSlot("readings")

	maxFastDepth = 32
)

// span is where a recorded value lies in the payload (and its kind). It holds no pointer, so the
// scanner's tables are cheap to clear and to fill.
type span struct {
	start, end int32
	kind       jkind
}

// numField is a numeric field met by the fast scanner: at the top level (group 0), or in the first
// "values" (1) or "readings" (2) object.
type numField struct {
	key, raw span
	group    uint8
}

type scanCtx uint8

const (
	ctxSkip scanCtx = iota
	ctxTop
	ctxMeta
	ctxValues
	ctxReadings
)

// fastScan reads a payload for the zero-configuration rules in one pass: it validates the JSON and
// records, without building a tree, the fields those rules read (the first occurrence of each name, as
// fastjson's Get finds it) and every numeric field they may take as a value.
//
// It is strict and declines (run returns false) anything it does not read exactly as the general path
// would: a root that is not an object, escapes in keys or in the recorded text, NaN/Inf and other
// non-RFC 8259 numbers, nesting deeper than maxFastDepth, and all invalid JSON. A declined payload goes
// to the general path (fastjson), which decides, so the scanner never changes a verdict: it accepts a
// subset of what fastjson accepts, and the differential fuzz target FuzzFastPath checks that both
// paths give the same readings and errors.
type fastScan struct {
	s     []byte
	slots [numFastSlots]span
	mask  uint32
	nums  []numField
}

// bytes returns the payload bytes of sp.
func (f *fastScan) bytes(sp span) []byte { return f.s[sp.start:sp.end] }

// run scans s; false means "not handled here".
func (f *fastScan) run(s []byte) bool {
	f.s, f.slots, f.mask, f.nums = s, [numFastSlots]span{}, pathBit, f.nums[:0]
	i := f.ws(0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i, ok := f.object(i, 1, ctxTop)
	return ok && f.ws(i) == len(s)
}

func (f *fastScan) ws(i int) int {
	s := f.s
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t') {
		i++
	}
	return i
}

// object scans the object starting at s[i] == '{' and returns the index after it.
func (f *fastScan) object(i, depth int, ctx scanCtx) (int, bool) {
	s := f.s
	i = f.ws(i + 1)
	if i < len(s) && s[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return 0, false
		}
		ks := i + 1
		ke, esc, ok := f.str(ks)
		if !ok || esc {
			return 0, false // escaped keys: the general path unescapes them
		}
		key := s[ks:ke]
		i = f.ws(ke + 1)
		if i >= len(s) || s[i] != ':' {
			return 0, false
		}
		i = f.ws(i + 1)
		if i >= len(s) {
			return 0, false
		}

		slot := -1
		switch ctx {
		case ctxTop:
			slot = autoSlot(b2s(key))
		case ctxMeta:
			switch string(key) {
			case "type":
				slot = fslotMetaType
			case "unit":
				slot = fslotMetaUnit
			}
		}
		first := slot >= 0 && f.slots[slot].kind == kAbsent

		var j span
		switch c := s[i]; {
		case c == '"':
			var end int
			if end, esc, ok = f.str(i + 1); !ok || first && esc {
				return 0, false
			}
			j = span{start: int32(i + 1), end: int32(end), kind: kString}
			i = end + 1
		case c == '{':
			if depth >= maxFastDepth {
				return 0, false
			}
			sub := ctxSkip
			if first {
				switch slot {
				case slotMetadata:
					sub = ctxMeta
				case slotValues:
					sub = ctxValues
				case slotReadings:
					sub = ctxReadings
				}
			}
			if i, ok = f.object(i, depth+1, sub); !ok {
				return 0, false
			}
			j.kind = kObject
		case c == '[':
			if depth >= maxFastDepth {
				return 0, false
			}
			if i, ok = f.array(i, depth+1); !ok {
				return 0, false
			}
			j.kind = kArray
		case c == 't':
			if i, ok = f.literal(i, "true"); !ok {
				return 0, false
			}
			j.kind = kTrue
		case c == 'f':
			if i, ok = f.literal(i, "false"); !ok {
				return 0, false
			}
			j.kind = kFalse
		case c == 'n':
			if i, ok = f.literal(i, "null"); !ok {
				return 0, false
			}
			j.kind = kNull
		default:
			start := i
			if i, ok = f.number(i); !ok {
				return 0, false
			}
			j = span{start: int32(start), end: int32(i), kind: kNumber}
			if ctx == ctxTop || ctx >= ctxValues {
				g := uint8(0)
				if ctx >= ctxValues {
					g = uint8(ctx - ctxValues + 1)
				}
				f.nums = append(f.nums, numField{key: span{start: int32(ks), end: int32(ke)}, raw: j, group: g})
			}
		}
		if first {
			f.slots[slot] = j
			if slot < numSlots {
				f.mask |= 1 << slot
			}
		}

		i = f.ws(i)
		if i >= len(s) {
			return 0, false
		}
		switch s[i] {
		case ',':
			i = f.ws(i + 1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// array scans the array starting at s[i] == '['; its values are checked, not recorded.
func (f *fastScan) array(i, depth int) (int, bool) {
	s := f.s
	i = f.ws(i + 1)
	if i < len(s) && s[i] == ']' {
		return i + 1, true
	}
	for {
		if i >= len(s) {
			return 0, false
		}
		var ok bool
		switch c := s[i]; {
		case c == '"':
			var end int
			if end, _, ok = f.str(i + 1); !ok {
				return 0, false
			}
			i = end + 1
		case c == '{' || c == '[':
			if depth >= maxFastDepth {
				return 0, false
			}
			if c == '{' {
				i, ok = f.object(i, depth+1, ctxSkip)
			} else {
				i, ok = f.array(i, depth+1)
			}
		case c == 't':
			i, ok = f.literal(i, "true")
		case c == 'f':
			i, ok = f.literal(i, "false")
		case c == 'n':
			i, ok = f.literal(i, "null")
		default:
			i, ok = f.number(i)
		}
		if !ok {
			return 0, false
		}
		i = f.ws(i)
		if i >= len(s) {
			return 0, false
		}
		switch s[i] {
		case ',':
			i = f.ws(i + 1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// str scans a string whose first byte is s[i] (after the quote); it returns the index of the closing
// quote and whether the string holds escapes (which must be valid). Eight bytes at a time while none is
// a quote or a backslash.
func (f *fastScan) str(i int) (end int, esc, ok bool) {
	s := f.s
	for {
		for i+8 <= len(s) {
			x := binary.LittleEndian.Uint64(s[i:])
			q, b := x^(lsb*'"'), x^(lsb*'\\')
			if m := (q-lsb)&^q&msb | (b-lsb)&^b&msb; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(s) && s[i] != '"' && s[i] != '\\' {
			i++
		}
		if i >= len(s) {
			return 0, false, false
		}
		if s[i] == '"' {
			return i, esc, true
		}
		esc = true
		if i+1 >= len(s) {
			return 0, false, false
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
				return 0, false, false
			}
			i += 6
		default:
			return 0, false, false
		}
	}
}

// SWAR constants: a byte of x equals c where (y-lsb)&^y&msb has its top bit, y = x^(lsb*c). Bytes
// after the first match may be reported falsely; the first is exact, which is all str uses.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func (f *fastScan) literal(i int, lit string) (int, bool) {
	if len(f.s)-i < len(lit) || string(f.s[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// number scans an RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (f *fastScan) number(i int) (int, bool) {
	s := f.s
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return 0, false
		}
	}
	return i, true
}
