package sensor

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// Config says where the registry comes from.
type Config struct {
	File           string        `yaml:"file" doc:"sensors.json in either shape (keyed by id, or {\"sensors\": [...]}). \"\" = no file: only the sensors listed below (or none: every sensor is then unknown, and its readings are kept and flagged)."`
	ReloadInterval time.Duration `yaml:"reload_interval" doc:"How often the file is checked for changes; a changed file is archived in the lake's sensors/ table and applies from the next batch. 0 = read it once at start."`
	Sensors        []Entry       `yaml:"sensors" doc:"Sensors declared in the configuration (they override the file's entries with the same id). Each: id, type, unit, min, max, interval, description."`
}

// Entry is one sensor declared in the configuration.
type Entry struct {
	ID          string        `yaml:"id"`
	Type        string        `yaml:"type,omitempty"`
	Unit        string        `yaml:"unit,omitempty"`
	Min         *float64      `yaml:"min,omitempty"`
	Max         *float64      `yaml:"max,omitempty"`
	Interval    time.Duration `yaml:"interval,omitempty"`
	Description string        `yaml:"description,omitempty"`
}

// DefaultConfig returns the defaults: no file, checked every 30s when one is set.
func DefaultConfig() Config { return Config{ReloadInterval: 30 * time.Second} }

// Validate implements config.Validator.
func (c Config) Validate() config.Errors {
	var es config.Errors
	es.Check(c.ReloadInterval >= 0, "reload_interval", "is negative", "use a duration such as 30s, or 0 to read the file once")
	if c.File != "" {
		if _, err := os.Stat(c.File); err != nil {
			es.Add("file", fmt.Sprintf("cannot read %s: %v", c.File, err), "point it at an existing sensors.json, or set it to \"\"")
		}
	}
	seen := map[string]bool{}
	for i, e := range c.Sensors {
		key := fmt.Sprintf("sensors[%d]", i)
		es.Check(e.ID != "", key+".id", "is empty", "give every sensor an id")
		es.Check(!seen[e.ID], key+".id", fmt.Sprintf("%q is listed twice", e.ID), "list each sensor once")
		seen[e.ID] = true
		es.Check((e.Min == nil) == (e.Max == nil), key+".min", "min and max must be set together", "set both, or neither")
		es.Check(e.Min == nil || e.Max == nil || *e.Min <= *e.Max, key+".min", "min exceeds max", "swap them")
		es.Check(e.Interval >= 0, key+".interval", "is negative", "use a duration such as 1s")
	}
	return es
}

// Load builds the registry cfg describes and returns it with its raw source bytes: the file's bytes
// exactly when only a file is used; otherwise a JSON document of the merged registry in the list shape.
func Load(cfg Config) (*Registry, []byte, error) {
	var fileSensors []Sensor
	var raw []byte
	if cfg.File != "" {
		data, err := os.ReadFile(cfg.File)
		if err != nil {
			return nil, nil, fmt.Errorf("read sensor registry: %w", err)
		}
		reg, err := Parse(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
		if len(cfg.Sensors) == 0 {
			return reg, data, nil
		}
		fileSensors = reg.Sensors()
	}
	all := append([]Sensor(nil), fileSensors...)
	for _, e := range cfg.Sensors {
		s := Sensor{ID: e.ID, Type: e.Type, Unit: e.Unit, Interval: e.Interval, Description: e.Description}
		if e.Min != nil && e.Max != nil {
			s.Min, s.Max, s.HasRange = *e.Min, *e.Max, true
		}
		all = append(all, s)
	}
	reg := New(all, nil)
	raw, err := MarshalList(reg)
	if err != nil {
		return nil, nil, err
	}
	return New(reg.Sensors(), raw), raw, nil
}

// MarshalList renders r in the list shape, which Parse reads back to the same sensors.
func MarshalList(r *Registry) ([]byte, error) {
	type loc struct {
		Lat float64 `json:"lat"`
		Lng float64 `json:"lng"`
	}
	type rng struct {
		Min float64 `json:"min"`
		Max float64 `json:"max"`
	}
	type item struct {
		ID          string `json:"id"`
		Location    *loc   `json:"location,omitempty"`
		Type        string `json:"type,omitempty"`
		Unit        string `json:"unit,omitempty"`
		Range       *rng   `json:"range,omitempty"`
		Description string `json:"description,omitempty"`
		Interval    string `json:"interval,omitempty"`
	}
	doc := struct {
		Sensors []item `json:"sensors"`
	}{Sensors: []item{}}
	for _, s := range r.Sensors() {
		it := item{ID: s.ID, Type: s.Type, Unit: s.Unit, Description: s.Description}
		if s.HasLocation {
			it.Location = &loc{s.Lat, s.Lng}
		}
		if s.HasRange {
			it.Range = &rng{s.Min, s.Max}
		}
		if s.Interval > 0 {
			it.Interval = s.Interval.String()
		}
		doc.Sensors = append(doc.Sensors, it)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal sensor registry: %w", err)
	}
	return append(out, '\n'), nil
}

//go:embed builtin.json
var builtin []byte

// Builtin returns the five demonstration sensors (the list-shape fixture) and their raw bytes: the
// simulator's default fleet, and the registry of `sluice run --simulate` when no file is given.
func Builtin() (*Registry, []byte) {
	reg, err := Parse(builtin)
	if err != nil {
		panic("sensor: built-in registry does not parse: " + err.Error()) // a build defect, not input
	}
	return reg, builtin
}
