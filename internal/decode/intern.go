package decode

import (
	"strings"
	"unicode/utf8"

	"github.com/sluice-project/sluice/internal/sensor"
)

// maxText bounds a sensor id, metric or unit, in bytes.
const maxText = 256

// interner returns one shared string per distinct text, so that decoding the same sensor ids, metrics
// and units again and again allocates nothing. It holds at most max strings; when full it starts afresh
// (strings already handed out stay valid: they are ordinary Go strings). It admits only valid UTF-8 of
// at most maxText bytes, which Parquet string columns and readers require.
type interner struct {
	m   map[string]string
	max int
}

func newInterner(max int) interner {
	return interner{m: make(map[string]string, 1024), max: max}
}

// bytes returns b as a shared string, or false when b is empty, too long or not UTF-8.
func (in *interner) bytes(b []byte) (string, bool) {
	if s, ok := in.m[string(b)]; ok {
		return s, true
	}
	if len(b) == 0 || len(b) > maxText || !utf8.Valid(b) {
		return "", false
	}
	if len(in.m) >= in.max {
		clear(in.m)
	}
	s := string(b)
	in.m[s] = s
	return s, true
}

// str is bytes for a string that may not outlive the call (a substring of the topic).
func (in *interner) str(t string) (string, bool) {
	if s, ok := in.m[t]; ok {
		return s, true
	}
	if len(t) == 0 || len(t) > maxText || !utf8.ValidString(t) {
		return "", false
	}
	if len(in.m) >= in.max {
		clear(in.m)
	}
	s := strings.Clone(t) // t may point into a caller's buffer
	in.m[s] = s
	return s, true
}

// sensorRef is an interned sensor id and what the registry knows of it (nil: unknown).
type sensorRef struct {
	id string
	s  *sensor.Sensor
}

// sensorCache resolves sensor ids to their registry entry and one shared string. A registered
// sensor's string is the registry's own, found with one lookup in the registry's map: the cache holds
// nothing for it, so a fleet the registry lists costs no memory per decoder (100,000 sensors took
// about 17 MB in each decode worker's copy). Ids the registry does not know are interned in the cache,
// bounded like interner; it is emptied when the registry changes.
type sensorCache struct {
	m   map[string]sensorRef
	max int
	reg *sensor.Registry
}

func newSensorCache(max int) sensorCache {
	return sensorCache{m: make(map[string]sensorRef, 64), max: max}
}

// use makes reg the registry ids are resolved against.
func (c *sensorCache) use(reg *sensor.Registry) {
	if reg != c.reg {
		clear(c.m)
		c.reg = reg
	}
}

// bytes returns the sensor with id b, or false when b is empty, too long or not UTF-8.
func (c *sensorCache) bytes(b []byte) (sensorRef, bool) {
	if len(b) <= maxText {
		if s := c.reg.LookupBytes(b); s != nil { // the registry's ids are valid UTF-8 (JSON strings)
			return sensorRef{id: s.ID, s: s}, true
		}
	}
	if r, ok := c.m[string(b)]; ok {
		return r, true
	}
	if len(b) == 0 || len(b) > maxText || !utf8.Valid(b) {
		return sensorRef{}, false
	}
	return c.add(string(b)), true
}

// str is bytes for a string that may not outlive the call (a substring of the topic).
func (c *sensorCache) str(t string) (sensorRef, bool) {
	if len(t) <= maxText {
		if s := c.reg.Lookup(t); s != nil {
			return sensorRef{id: s.ID, s: s}, true
		}
	}
	if r, ok := c.m[t]; ok {
		return r, true
	}
	if len(t) == 0 || len(t) > maxText || !utf8.ValidString(t) {
		return sensorRef{}, false
	}
	return c.add(strings.Clone(t)), true
}

// add interns an id the registry does not know.
func (c *sensorCache) add(id string) sensorRef {
	if len(c.m) >= c.max {
		clear(c.m)
	}
	r := sensorRef{id: id}
	c.m[id] = r
	return r
}
