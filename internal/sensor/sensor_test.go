package sensor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBothShapes(t *testing.T) {
	cases := []struct {
		file   string
		id     string
		desc   string
		lat    float64
		lng    float64
		ids    []string
		digest bool
	}{
		{file: "axpo-sensors.json", id: "3", desc: "Deposit", lat: 90, lng: 10, ids: []string{"1", "2", "3", "4", "5"}},
		{file: "sensors-list-form.json", id: "Sensor 3", desc: "Deposit", lat: 90, lng: 10, ids: []string{"Sensor 1", "Sensor 2", "Sensor 3", "Sensor 4", "Sensor 5"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := fixture(t, c.file)
			r, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if r.Len() != 5 {
				t.Fatalf("Len = %d, want 5", r.Len())
			}
			var ids []string
			for _, s := range r.Sensors() {
				ids = append(ids, s.ID)
			}
			if strings.Join(ids, ",") != strings.Join(c.ids, ",") {
				t.Fatalf("ids %v, want %v (sorted)", ids, c.ids)
			}
			s := r.Lookup(c.id)
			want := Sensor{ID: c.id, Type: "temperature", Unit: "C", Min: 0, Max: 45, HasRange: true, Lat: c.lat, Lng: c.lng, HasLocation: true, Description: c.desc}
			if s == nil || *s != want {
				t.Fatalf("Lookup(%q) = %+v, want %+v", c.id, s, want)
			}
			if r.Lookup("nope") != nil {
				t.Fatal("unknown id found")
			}
			if len(r.Digest()) != 64 {
				t.Fatalf("digest %q", r.Digest())
			}
			again, _ := Parse(data)
			if again.Digest() != r.Digest() {
				t.Fatal("same bytes, different digest")
			}
			changed, _ := Parse(append(data, '\n'))
			if changed.Digest() == r.Digest() {
				t.Fatal("different bytes, same digest: a new version would not be archived")
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want Sensor
	}{
		{"interval string", `{"a":{"type":"pressure","unit":"bar","interval":"5s"}}`, Sensor{ID: "a", Type: "pressure", Unit: "bar", Interval: 5 * time.Second}},
		{"interval seconds", `{"sensors":[{"id":"a","interval":0.5}]}`, Sensor{ID: "a", Interval: 500 * time.Millisecond}},
		{"negative range", `{"a":{"range":[-40.5,-1]}}`, Sensor{ID: "a", Min: -40.5, Max: -1, HasRange: true}},
		{"no optional fields", `{"sensors":[{"id":"x"}]}`, Sensor{ID: "x"}},
		{"id equal to key", `{"k":{"id":"k"}}`, Sensor{ID: "k"}},
		{"extra fields ignored", `{"sensors":[{"id":"x","vendor":{"name":"acme"},"tags":[1]}]}`, Sensor{ID: "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Parse([]byte(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			if s := r.Lookup(c.want.ID); s == nil || *s != c.want {
				t.Fatalf("got %+v, want %+v", s, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"not json", `{`, "parse sensors"},
		{"array", `[1]`, "cannot unmarshal array"},
		{"entry not object", `{"a": 5}`, `"a": not a sensors document`},
		{"list entry without id", `{"sensors":[{"type":"t"}]}`, "sensors[0]: no id"},
		{"duplicate id", `{"sensors":[{"id":"a"},{"id":"a"}]}`, `sensor "a" is listed twice`},
		{"range wrong arity", `{"a":{"range":[1]}}`, "want [min, max]"},
		{"range min over max", `{"a":{"range":{"min":5,"max":1}}}`, "min must not exceed max"},
		{"range half", `{"a":{"range":{"min":5}}}`, "both min and max"},
		{"range string", `{"a":{"range":"0-45"}}`, "want [min, max] or"},
		{"bad interval", `{"a":{"interval":"soon"}}`, `interval "soon"`},
		{"negative interval", `{"a":{"interval":-1}}`, "is negative"},
		{"id differs from key", `{"a":{"id":"b"}}`, `id "b" differs from its key`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse(%s) = %v, want error containing %q", c.doc, err, c.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sensors.json")
	data := fixture(t, "axpo-sensors.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("file only keeps its bytes", func(t *testing.T) {
		r, raw, err := Load(Config{File: file})
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != string(data) || r.Len() != 5 {
			t.Fatalf("raw differs from the file or %d sensors", r.Len())
		}
	})
	t.Run("config overrides file", func(t *testing.T) {
		lo, hi := -10.0, 60.0
		r, raw, err := Load(Config{File: file, Sensors: []Entry{{ID: "3", Type: "temperature", Unit: "F", Min: &lo, Max: &hi}, {ID: "p1", Type: "pressure", Interval: time.Second}}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Len() != 6 || r.Lookup("3").Unit != "F" || r.Lookup("3").Max != 60 || r.Lookup("p1").Interval != time.Second || r.Lookup("1").Description != "Main Entrance" {
			t.Fatalf("merge wrong: %+v", r.Sensors())
		}
		back, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if back.Len() != 6 || *back.Lookup("3") != *r.Lookup("3") || back.Digest() != r.Digest() {
			t.Fatalf("raw does not read back to the same registry:\n%s", raw)
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		r, _, err := Load(DefaultConfig())
		if err != nil || r.Len() != 0 {
			t.Fatalf("Load(defaults) = %d sensors, %v", r.Len(), err)
		}
	})
	t.Run("bad file names it", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		os.WriteFile(bad, []byte(`{"sensors":[{"id":"a"},{"id":"a"}]}`), 0o600)
		_, _, err := Load(Config{File: bad})
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "listed twice") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestValidate(t *testing.T) {
	one := 1.0
	c := Config{File: "/nonexistent/sensors.json", ReloadInterval: -1, Sensors: []Entry{{ID: ""}, {ID: "a", Min: &one}, {ID: "a"}}}
	es := c.Validate()
	got := es.Error()
	for _, want := range []string{"file: cannot read /nonexistent/sensors.json", "reload_interval: is negative", "sensors[0].id: is empty", "sensors[1].min: min and max must be set together", `sensors[2].id: "a" is listed twice`} {
		if !strings.Contains(got, want) {
			t.Errorf("Validate() lacks %q:\n%s", want, got)
		}
	}
	if len(es) != 5 {
		t.Fatalf("got %d errors, want 5:\n%s", len(es), got)
	}
	if es := DefaultConfig().Validate(); len(es) != 0 {
		t.Fatalf("defaults invalid: %v", es)
	}
}

func TestBuiltin(t *testing.T) {
	r, raw := Builtin()
	if r.Len() != 5 || r.Lookup("Sensor 1") == nil || len(raw) == 0 {
		t.Fatalf("builtin: %d sensors", r.Len())
	}
}

func TestInRange(t *testing.T) {
	s := Sensor{Min: 0, Max: 45, HasRange: true}
	for v, want := range map[float64]bool{-0.1: false, 0: true, 45: true, 45.01: false, 20: true} {
		if s.InRange(v) != want {
			t.Errorf("InRange(%v) = %v", v, !want)
		}
	}
	if !(&Sensor{}).InRange(1e300) {
		t.Error("a sensor without range accepts everything")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "{", `{"sensors":[]}`, `{"a":{"range":[0,1]}}`, `{"sensors":[{"id":"x","range":{"min":1,"max":2},"interval":"1s"}]}garbage`, `{"a":{"interval":1e308}}`, `{"sensors":{"id":"x"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		for _, s := range r.Sensors() {
			if s.ID == "" || (s.HasRange && s.Min > s.Max) || s.Interval < 0 {
				t.Fatalf("Parse accepted an invalid sensor: %+v", s)
			}
			if r.Lookup(s.ID) == nil {
				t.Fatalf("sensor %q not found by id", s.ID)
			}
		}
	})
}

// TestNewLaterReplaces: New keeps one sensor per id, the last given, sorted by id, and Lookup
// returns that one.
func TestNewLaterReplaces(t *testing.T) {
	r := New([]Sensor{{ID: "b", Unit: "bar"}, {ID: "a", Unit: "C"}, {ID: "b", Unit: "kPa"}, {ID: "c"}, {ID: "a", Unit: "K"}}, nil)
	var got []string
	for _, s := range r.Sensors() {
		got = append(got, s.ID+":"+s.Unit)
	}
	if strings.Join(got, " ") != "a:K b:kPa c:" || r.Len() != 3 {
		t.Fatalf("sensors = %v (len %d), want a:K b:kPa c:", got, r.Len())
	}
	for id, unit := range map[string]string{"a": "K", "b": "kPa", "c": ""} {
		if s := r.Lookup(id); s == nil || s.ID != id || s.Unit != unit {
			t.Fatalf("Lookup(%q) = %+v, want unit %q", id, s, unit)
		}
	}
	if r.Lookup("d") != nil {
		t.Fatal("Lookup of an unknown id is not nil")
	}
}
