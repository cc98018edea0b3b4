package simulate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/sluice-project/sluice/internal/sensor"
)

// ErrNoSensors is returned when the registry to simulate holds no sensor.
var ErrNoSensors = errors.New("no sensors to simulate")

// Sensors returns the sensors cfg simulates: the file's (or the built-in five), or with Fleet > 0 that
// many made from them as templates. Write it with sensor.MarshalList to give sluice a registry that
// knows a synthesised fleet.
func Sensors(cfg Config) (*sensor.Registry, error) {
	var reg *sensor.Registry
	if cfg.Sensors == "" {
		reg, _ = sensor.Builtin()
	} else {
		r, _, err := sensor.Load(sensor.Config{File: cfg.Sensors})
		if err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		reg = r
	}
	if reg.Len() == 0 {
		return nil, fmt.Errorf("simulate: %s: %w", cfg.Sensors, ErrNoSensors)
	}
	if cfg.Fleet <= 0 {
		return reg, nil
	}
	return sensor.New(synthesise(reg.Sensors(), cfg.Fleet, cfg.Seed), nil), nil
}

// synthesise makes n sensors from templates: sensor k (1-based) copies template (k-1) mod len, takes
// the id "<template id>-<k, 5 digits>", and moves up to ±0.5 (degrees) from the template's location.
func synthesise(templates []sensor.Sensor, n int, seed int64) []sensor.Sensor {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x666c656574)) // "fleet"
	out := make([]sensor.Sensor, n)
	for k := range n {
		s := templates[k%len(templates)]
		s.ID = fmt.Sprintf("%s-%05d", s.ID, k+1)
		if s.HasLocation {
			s.Lat = math.Round((s.Lat+rng.Float64()-0.5)*1e5) / 1e5
			s.Lng = math.Round((s.Lng+rng.Float64()-0.5)*1e5) / 1e5
		}
		out[k] = s
	}
	return out
}

// typeDefault is the range and unit assumed for a sensor type when the registry gives none.
type typeDefault struct {
	min, max float64
	unit     string
}

// typeDefaults are plausible industrial ranges by metric type.
var typeDefaults = map[string]typeDefault{
	"temperature": {0, 45, "C"},
	"humidity":    {0, 100, "%"},
	"pressure":    {950, 1050, "hPa"},
	"vibration":   {0, 12, "mm/s"},
	"co2":         {400, 2000, "ppm"},
	"voltage":     {210, 250, "V"},
	"current":     {0, 32, "A"},
	"power":       {0, 10000, "W"},
	"energy":      {0, 1000, "kWh"},
	"flow":        {0, 120, "l/min"},
	"level":       {0, 100, "%"},
	"speed":       {0, 3000, "rpm"},
	"rpm":         {0, 3000, "rpm"},
	"light":       {0, 2000, "lx"},
	"noise":       {30, 100, "dB"},
}

// genericDefault applies to types not in typeDefaults.
var genericDefault = typeDefault{0, 100, ""}

// profile is what the generator needs of one sensor: metric, unit and range, defaults filled in.
func profile(s *sensor.Sensor) (metric, unit string, lo, hi float64) {
	metric = s.Type
	if metric == "" {
		metric = "value"
	}
	d, ok := typeDefaults[strings.ToLower(metric)]
	if !ok {
		d = genericDefault
	}
	lo, hi, unit = d.min, d.max, s.Unit
	if s.HasRange {
		lo, hi = s.Min, s.Max
	}
	if unit == "" {
		unit = d.unit
	}
	return metric, unit, lo, hi
}

// siteLine names the site and line of the i-th sensor for {site} and {line}: ten sensors to a line,
// four lines to a site; sites are a, b, … z, aa, ab, …
func siteLine(i int) (site, line string) {
	line = fmt.Sprintf("line%d", (i/10)%4+1)
	n := i / 40
	var b []byte
	for {
		b = append(b, byte('a'+n%26))
		n = n/26 - 1
		if n < 0 {
			break
		}
	}
	for l, r := 0, len(b)-1; l < r; l, r = l+1, r-1 {
		b[l], b[r] = b[r], b[l]
	}
	return string(b), line
}

// topicSafe replaces what cannot stand in a topic level (/, +, #, NUL) and spaces with _: "Sensor 3"
// becomes "Sensor_3", as in the fixture.
func topicSafe(id string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '/', '+', '#', 0:
			return '_'
		}
		return r
	}, id)
}

// expandTopic fills a topic template for one sensor.
func expandTopic(tmpl, sensorID, metric, site, line string) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	return strings.NewReplacer("{sensor}", topicSafe(sensorID), "{metric}", topicSafe(metric), "{site}", site, "{line}", line).Replace(tmpl)
}
