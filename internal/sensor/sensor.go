package sensor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Sensor is what the registry knows about one sensor. Zero values mean "not known".
type Sensor struct {
	ID          string        `json:"id"`
	Type        string        `json:"type,omitempty"` // the metric it measures: temperature, pressure…
	Unit        string        `json:"unit,omitempty"`
	Min         float64       `json:"min,omitempty"`
	Max         float64       `json:"max,omitempty"`
	HasRange    bool          `json:"has_range,omitempty"` // Min and Max are set
	Lat         float64       `json:"lat,omitempty"`
	Lng         float64       `json:"lng,omitempty"`
	HasLocation bool          `json:"has_location,omitempty"`
	Description string        `json:"description,omitempty"`
	Interval    time.Duration `json:"interval,omitempty"` // expected time between readings
}

// InRange reports whether v lies in the sensor's range (always true when it has none).
func (s *Sensor) InRange(v float64) bool {
	return !s.HasRange || (v >= s.Min && v <= s.Max)
}

// Registry is an immutable set of sensors keyed by id.
type Registry struct {
	byID    map[string]int32 // index in sorted: one copy of each sensor
	sorted  []Sensor
	digest  string
	sources string
}

// New returns a registry of sensors; a later sensor with the same id replaces an earlier one. raw is
// the registry's source bytes, whose SHA-256 is the registry's digest (nil: the digest is taken over
// the sensors' canonical JSON).
func New(sensors []Sensor, raw []byte) *Registry {
	byID := make(map[string]int32, len(sensors)) // first the last position of each id, then its index in sorted
	for i, s := range sensors {
		byID[s.ID] = int32(i)
	}
	r := &Registry{byID: byID, sorted: make([]Sensor, 0, len(byID))}
	for i, s := range sensors {
		if byID[s.ID] == int32(i) {
			r.sorted = append(r.sorted, s)
		}
	}
	slices.SortFunc(r.sorted, func(a, b Sensor) int { return strings.Compare(a.ID, b.ID) })
	for i := range r.sorted {
		byID[r.sorted[i].ID] = int32(i)
	}
	if raw == nil {
		raw, _ = json.Marshal(r.sorted)
	}
	sum := sha256.Sum256(raw)
	r.digest = hex.EncodeToString(sum[:])
	return r
}

// Empty returns a registry with no sensors.
func Empty() *Registry { return New(nil, nil) }

// Lookup returns the sensor with id, or nil when the registry does not know it.
func (r *Registry) Lookup(id string) *Sensor {
	if r == nil {
		return nil
	}
	i, ok := r.byID[id]
	if !ok {
		return nil
	}
	return &r.sorted[i]
}

// LookupBytes is Lookup for an id held in a byte slice (no copy of it is made).
func (r *Registry) LookupBytes(id []byte) *Sensor {
	if r == nil {
		return nil
	}
	i, ok := r.byID[string(id)]
	if !ok {
		return nil
	}
	return &r.sorted[i]
}

// Len returns the number of sensors.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.byID)
}

// Sensors returns every sensor, sorted by id. The slice must not be modified.
func (r *Registry) Sensors() []Sensor {
	if r == nil {
		return nil
	}
	return r.sorted
}

// Digest returns the SHA-256 (hex) of the registry's source bytes: equal digests, same version.
func (r *Registry) Digest() string { return r.digest }
