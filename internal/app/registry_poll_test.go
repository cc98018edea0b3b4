package app

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/sensor"
)

// TestRegistryPoller: the reloader reads the registry file only when its size or modification time
// changed, and hands on a version only when its content changed. A file overwritten with garbage of
// the same size and given back its old mtime is not read (a read would fail to parse).
func TestRegistryPoller(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sensors.json")
	v1 := []byte(`{"sensors": [{"id": "a"}, {"id": "b"}]}`)
	v2 := []byte(`{"sensors": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}`)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	write := func(data []byte, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(v1, t0)
	cfg := sensor.Config{File: path}
	p := newRegistryPoller(cfg)
	reg, _, err := sensor.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.took(reg)

	garbage := bytes.Repeat([]byte("x"), len(v1))
	steps := []struct {
		name    string
		data    []byte
		mtime   time.Time
		took    bool
		sensors int // of the new version; 0: none
		err     bool
	}{
		{name: "unchanged", mtime: t0},
		{name: "garbage, same size and mtime: not read", data: garbage, mtime: t0},
		{name: "garbage, new mtime: read, fails", data: garbage, mtime: t0.Add(time.Second), err: true},
		{name: "still garbage: read again", mtime: t0.Add(time.Second), err: true},
		{name: "same content back, new mtime: no new version", data: v1, mtime: t0.Add(2 * time.Second)},
		{name: "garbage behind the touched stamp: not read", data: garbage, mtime: t0.Add(2 * time.Second)},
		{name: "new version", data: v2, mtime: t0.Add(3 * time.Second), sensors: 3},
		{name: "not taken (archiving failed): offered again", mtime: t0.Add(3 * time.Second), sensors: 3, took: true},
		{name: "taken: nothing new", mtime: t0.Add(3 * time.Second)},
	}
	for _, st := range steps {
		if st.data != nil {
			write(st.data, st.mtime)
		}
		reg, raw, err := p.poll()
		if (err != nil) != st.err {
			t.Fatalf("%s: poll error %v, want error %v", st.name, err, st.err)
		}
		got := 0
		if reg != nil {
			got = reg.Len()
			if !bytes.Equal(raw, v2) {
				t.Fatalf("%s: raw = %q", st.name, raw)
			}
		}
		if got != st.sensors {
			t.Fatalf("%s: new version with %d sensors, want %d", st.name, got, st.sensors)
		}
		if st.took {
			p.took(reg)
		}
	}
}
