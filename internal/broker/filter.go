package broker

import "strings"

// topicSet decides which published topics are appended to the log: those matching any of its filters.
// Topics beginning with '$' ($SYS and any other server topic) never match, whatever the filters.
//
// Written here rather than taken from mochi: mochi's matcher is its subscription index (a tree with
// locks that allocates a result set per lookup, and that does not match "a/+/#" against "a/b"), and this
// runs once per message on the read path of every connection.
type topicSet struct {
	all     bool // a filter is "#": everything but $ topics
	filters []string
}

func newTopicSet(filters []string) topicSet {
	s := topicSet{filters: filters}
	for _, f := range filters {
		if f == "#" {
			s.all = true
		}
	}
	return s
}

func (s topicSet) match(topic string) bool {
	if strings.HasPrefix(topic, "$") {
		return false
	}
	if s.all {
		return true
	}
	for _, f := range s.filters {
		if matchFilter(f, topic) {
			return true
		}
	}
	return false
}

// matchFilter reports whether topic matches filter as MQTT 3.1.1 and 5 define it (section 4.7): '+'
// matches one level, '#' as the last level matches any number of levels including the parent ("a/#"
// matches "a"), and wildcards in the first level do not match topics beginning with '$'.
func matchFilter(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false // [MQTT-4.7.2-1]
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" && !fmore {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case fmore && tmore:
			filter, topic = frest, trest
		case !fmore && !tmore:
			return true
		case fmore:
			return frest == "#" // "a/#" matches "a"
		default:
			return false
		}
	}
}

// validFilter reports whether f is a well-formed topic filter: not empty, no NUL, '+' and '#' only as
// whole levels, '#' only last.
func validFilter(f string) bool {
	if f == "" || strings.ContainsRune(f, 0) || len(f) > 65535 {
		return false
	}
	for rest, more := f, true; more; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		switch {
		case level == "#" && more:
			return false
		case level != "#" && level != "+" && strings.ContainsAny(level, "+#"):
			return false
		}
	}
	return true
}
