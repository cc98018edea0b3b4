package sensor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
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
	byID    map[string]*Sensor
	sorted  []Sensor
	digest  string
	sources string
}

// New returns a registry of sensors; a later sensor with the same id replaces an earlier one. raw is
// the registry's source bytes, whose SHA-256 is the registry's digest (nil: the digest is taken over
// the sensors' canonical JSON).
func New(sensors []Sensor, raw []byte) *Registry {
	r := &Registry{byID: make(map[string]*Sensor, len(sensors))}
	for _, s := range sensors {
		r.byID[s.ID] = &s
	}
	r.sorted = make([]Sensor, 0, len(r.byID))
	for _, s := range r.byID {
		r.sorted = append(r.sorted, *s)
	}
	slices.SortFunc(r.sorted, func(a, b Sensor) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
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
	return r.byID[id]
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
