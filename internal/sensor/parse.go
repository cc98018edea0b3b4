package sensor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Errors returned by Parse.
var (
	ErrShape = errors.New("not a sensors document: want an object keyed by sensor id, or {\"sensors\": [...]}")
)

// Parse reads a sensors.json document in either shape (see the package doc).
func Parse(data []byte) (*Registry, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("parse sensors: %w", err)
	}
	var sensors []Sensor
	if list, ok := top["sensors"]; ok && len(bytes.TrimSpace(list)) > 0 && bytes.TrimSpace(list)[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(list, &items); err != nil {
			return nil, fmt.Errorf("parse sensors: \"sensors\": %w", err)
		}
		for i, item := range items {
			s, err := parseOne(item, "")
			if err != nil {
				return nil, fmt.Errorf("parse sensors: sensors[%d]: %w", i, err)
			}
			sensors = append(sensors, s)
		}
	} else {
		for id, item := range top {
			s, err := parseOne(item, id)
			if err != nil {
				return nil, fmt.Errorf("parse sensors: %q: %w", id, err)
			}
			sensors = append(sensors, s)
		}
	}
	seen := make(map[string]bool, len(sensors))
	for _, s := range sensors {
		if seen[s.ID] {
			return nil, fmt.Errorf("parse sensors: sensor %q is listed twice", s.ID)
		}
		seen[s.ID] = true
	}
	return New(sensors, data), nil
}

// entry is the union of both shapes' per-sensor fields.
type entry struct {
	ID       *string         `json:"id"`
	Type     string          `json:"type"`
	Unit     string          `json:"unit"`
	Range    json.RawMessage `json:"range"`
	Lat      *float64        `json:"lat"`
	Lng      *float64        `json:"lng"`
	Location *struct {
		Lat *float64 `json:"lat"`
		Lng *float64 `json:"lng"`
	} `json:"location"`
	Description string          `json:"description"`
	Interval    json.RawMessage `json:"interval"`
}

func parseOne(raw json.RawMessage, key string) (Sensor, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return Sensor{}, ErrShape
	}
	var e entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return Sensor{}, err
	}
	s := Sensor{ID: key, Type: e.Type, Unit: e.Unit, Description: e.Description}
	if e.ID != nil {
		if key != "" && *e.ID != key {
			return Sensor{}, fmt.Errorf("id %q differs from its key", *e.ID)
		}
		s.ID = *e.ID
	}
	if s.ID == "" {
		return Sensor{}, errors.New("no id")
	}
	if e.Lat != nil && e.Lng != nil {
		s.Lat, s.Lng, s.HasLocation = *e.Lat, *e.Lng, true
	}
	if e.Location != nil && e.Location.Lat != nil && e.Location.Lng != nil {
		s.Lat, s.Lng, s.HasLocation = *e.Location.Lat, *e.Location.Lng, true
	}
	if err := parseRange(e.Range, &s); err != nil {
		return Sensor{}, err
	}
	d, err := parseInterval(e.Interval)
	if err != nil {
		return Sensor{}, err
	}
	s.Interval = d
	return s, nil
}

func parseRange(raw json.RawMessage, s *Sensor) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var lo, hi *float64
	switch raw[0] {
	case '[':
		var pair []*float64
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return fmt.Errorf("range %s: want [min, max]", raw)
		}
		lo, hi = pair[0], pair[1]
	case '{':
		var mm struct{ Min, Max *float64 }
		if err := json.Unmarshal(raw, &mm); err != nil {
			return fmt.Errorf("range %s: want {\"min\": …, \"max\": …}", raw)
		}
		lo, hi = mm.Min, mm.Max
	default:
		return fmt.Errorf("range %s: want [min, max] or {\"min\": …, \"max\": …}", raw)
	}
	if lo == nil || hi == nil {
		return fmt.Errorf("range %s: both min and max are needed", raw)
	}
	if math.IsNaN(*lo) || math.IsNaN(*hi) || *lo > *hi {
		return fmt.Errorf("range %s: min must not exceed max", raw)
	}
	s.Min, s.Max, s.HasRange = *lo, *hi, true
	return nil
}

func parseInterval(raw json.RawMessage) (time.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var d time.Duration
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("interval %q: write a duration such as 1s or 5m, or a number of seconds", s)
		}
	} else {
		secs, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(secs, 0) || secs > 1e9 {
			return 0, fmt.Errorf("interval %s: write a duration such as \"1s\", or a number of seconds", raw)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("interval %s is negative", raw)
	}
	return d, nil
}
