package broker

import (
	"strings"
	"testing"
)

func TestMatchFilter(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"#", "$SYS/uptime", false},
		{"+/uptime", "$SYS/uptime", false},
		{"$SYS/#", "$SYS/uptime", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"+", "a", true},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"+/#", "a", true},
		{"a/+/#", "a/b", true},
		{"a/+/#", "a/b/c/d", true},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"a/b", "a/b", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
		{"a/b", "A/b", false},
		{"plant/+/temp", "plant/x/temp", true},
	}
	for _, c := range cases {
		if got := matchFilter(c.filter, c.topic); got != c.want {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

func TestTopicSet(t *testing.T) {
	cases := []struct {
		filters []string
		topic   string
		want    bool
	}{
		{[]string{"#"}, "anything/at/all", true},
		{[]string{"#"}, "$SYS/broker/uptime", false},
		{[]string{"a/#", "b/+"}, "b/x", true},
		{[]string{"a/#", "b/+"}, "b/x/y", false},
		{[]string{"a/#", "b/+"}, "c", false},
	}
	for _, c := range cases {
		if got := newTopicSet(c.filters).match(c.topic); got != c.want {
			t.Errorf("%v match %q = %v, want %v", c.filters, c.topic, got, c.want)
		}
	}
}

func TestValidFilter(t *testing.T) {
	for f, want := range map[string]bool{
		"#": true, "+": true, "a/#": true, "a/+/b": true, "/": true, "a//b": true, "+/+": true,
		"": false, "a#": false, "a/#/b": false, "a+/b": false, "a/b+": false, "#/": false, "a\x00b": false,
		strings.Repeat("a", 65536): false,
	} {
		if got := validFilter(f); got != want {
			t.Errorf("validFilter(%.20q) = %v, want %v", f, got, want)
		}
	}
}

// refMatch is the specification read literally, by splitting into levels: the fuzzer's oracle.
func refMatch(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	f, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return i == len(f)-1
		}
		if i >= len(tl) {
			return false
		}
		if level != "+" && level != tl[i] {
			return false
		}
	}
	return len(f) == len(tl)
}

// FuzzMatchFilter checks the matcher against the literal reading of the specification for every valid
// filter and any topic (topics and filters are client and configuration input).
func FuzzMatchFilter(f *testing.F) {
	f.Add("", "")
	f.Add("#", "$SYS/x")
	f.Add("a/+/#", "a/b")
	f.Add("a/+", "a/")
	f.Add("+/+/+", "a/b")
	f.Add(strings.Repeat("+/", 300)+"#", strings.Repeat("x/", 400))
	f.Add("a/b/c\xff", "a/b/c\xff/garbage")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		got := matchFilter(filter, topic) // must not panic, valid or not
		if !validFilter(filter) {
			return
		}
		if want := refMatch(filter, topic); got != want {
			t.Fatalf("matchFilter(%q, %q) = %v, spec says %v", filter, topic, got, want)
		}
	})
}

func BenchmarkTopicSet(b *testing.B) {
	s := newTopicSet([]string{"office/#", "lab/+/temperature", "plant/+/+/+/temperature"})
	topic := "plant/a/line2/pump-07/temperature"
	b.ReportAllocs()
	for b.Loop() {
		if !s.match(topic) {
			b.Fatal("no match")
		}
	}
}
