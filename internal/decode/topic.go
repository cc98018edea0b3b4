package decode

import (
	"fmt"
	"strings"
)

// topicFilter is a compiled MQTT topic filter whose wildcard levels may be named (+sensor_id, #rest).
type topicFilter struct {
	raw    string
	prefix string // every topic it matches starts with this: its first literal levels, each with "/"
	levels []topicLevel
	// which level gives each part, or -1
	sensor, metric, unit int
}

type levelKind uint8

const (
	levelLiteral levelKind = iota
	levelPlus              // one level
	levelHash              // this level and all below (possibly none)
)

type topicLevel struct {
	kind levelKind
	lit  string // levelLiteral
	name string // wildcard's name, "" when unnamed
}

// topicParts are the parts of a topic a filter named; substrings of the topic, "" when absent.
type topicParts struct {
	sensor, metric, unit string
}

// compileFilter parses an MQTT topic filter in which + and # may be followed by a name.
func compileFilter(s string) (topicFilter, error) {
	f := topicFilter{raw: s, sensor: -1, metric: -1, unit: -1}
	if s == "" {
		return f, fmt.Errorf("is empty")
	}
	levels := strings.Split(s, "/")
	for i, l := range levels {
		var tl topicLevel
		switch {
		case strings.HasPrefix(l, "+"):
			tl = topicLevel{kind: levelPlus, name: l[1:]}
		case strings.HasPrefix(l, "#"):
			if i != len(levels)-1 {
				return f, fmt.Errorf("%q: # must be the last level", s)
			}
			tl = topicLevel{kind: levelHash, name: l[1:]}
		default:
			if strings.ContainsAny(l, "+#") {
				return f, fmt.Errorf("%q: level %q mixes a wildcard with text", s, l)
			}
			tl = topicLevel{kind: levelLiteral, lit: l}
		}
		if tl.kind != levelLiteral {
			if !isName(tl.name) {
				return f, fmt.Errorf("%q: %q is not a wildcard name (letters, digits, _)", s, tl.name)
			}
			var slot *int
			switch tl.name {
			case "sensor_id":
				slot = &f.sensor
			case "metric":
				slot = &f.metric
			case "unit":
				slot = &f.unit
			}
			if slot != nil {
				if *slot >= 0 {
					return f, fmt.Errorf("%q names %s twice", s, tl.name)
				}
				*slot = i
			}
		}
		f.levels = append(f.levels, tl)
	}
	// (not the level before a final #, which also matches the topic ending there)
	for i := 0; i+1 < len(f.levels) && f.levels[i].kind == levelLiteral && f.levels[i+1].kind != levelHash; i++ {
		f.prefix += f.levels[i].lit + "/"
	}
	return f, nil
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// match reports whether topic matches f and, when it does, fills parts. It follows MQTT: + matches
// exactly one (possibly empty) level, # the rest (possibly nothing, including the level separator
// before it), and a wildcard in the first level does not match a topic starting with '$'.
func (f *topicFilter) match(topic string, parts *topicParts) bool {
	if len(topic) < len(f.prefix) || topic[:len(f.prefix)] != f.prefix {
		return false // the common case, cheaply
	}
	if len(topic) > 0 && topic[0] == '$' && f.levels[0].kind != levelLiteral {
		return false
	}
	var p topicParts
	rest, more := topic, true
	for i := range f.levels {
		l := &f.levels[i]
		if l.kind == levelHash {
			if !more {
				rest = ""
			}
			f.set(&p, i, rest)
			*parts = p
			return true
		}
		if !more {
			return false
		}
		// levels are short: a plain loop beats IndexByte's call and setup
		j := 0
		for j < len(rest) && rest[j] != '/' {
			j++
		}
		level := rest[:j]
		if j < len(rest) {
			rest = rest[j+1:]
		} else {
			rest, more = "", false
		}
		if l.kind == levelLiteral {
			if level != l.lit {
				return false
			}
			continue
		}
		f.set(&p, i, level)
	}
	if more {
		return false
	}
	*parts = p
	return true
}

func (f *topicFilter) set(p *topicParts, i int, s string) {
	switch i {
	case f.sensor:
		p.sensor = s
	case f.metric:
		p.metric = s
	case f.unit:
		p.unit = s
	}
}
