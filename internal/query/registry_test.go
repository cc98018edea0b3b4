package query

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/testkit"
)

// TestRegistryVersions loads a registry, then a larger new version: the sensors view holds exactly
// the newest version's sensors with their fields (NULL where a sensor has none), none of the old one.
func TestRegistryVersions(t *testing.T) {
	lk, u := testkit.TempLake(t)
	c := testkit.NewCommitter(t, lk, lake.SensorsSpec())
	now := time.Now()
	v1 := `{"sensors": [{"id": "old-1", "type": "pressure", "unit": "bar"}, {"id": "old-2"}]}`
	c.Commit(t, []lake.SensorsRow{{Digest: "v1", LoadedAt: now.UnixMicro(), Origin: "test", SensorCount: 2, Raw: []byte(v1)}}, "registry-v1", 0)
	e := openEngine(t, u, testConfig())
	testkit.Eventually(t, 10*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM sensors WHERE registered") == 2 }, "first registry not loaded")

	const n = 20_000
	var b strings.Builder
	b.WriteString(`{"sensors": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		if i%2 == 0 {
			fmt.Fprintf(&b, `{"id": "s-%05d", "type": "temperature", "unit": "C", "range": {"min": -%d, "max": %d}, "interval": "%ds", "location": {"lat": 1.5, "lng": -2.25}, "description": "it's %d"}`, i, i, i, 1+i%60, i)
		} else {
			fmt.Fprintf(&b, `{"id": "s-%05d"}`, i)
		}
	}
	b.WriteString("]}")
	c.Commit(t, []lake.SensorsRow{{Digest: "v2", LoadedAt: now.Add(time.Second).UnixMicro(), Origin: "test", SensorCount: n, Raw: []byte(b.String())}}, "registry-v2", 1)
	testkit.Eventually(t, 20*time.Second, func() bool {
		return count(t, e, "SELECT count(*) FROM sensors WHERE registered AND registry_digest = 'v2'") == n
	}, "second registry not loaded")

	if got := count(t, e, "SELECT count(*) FROM sensors"); got != n {
		t.Fatalf("sensors holds %d rows, want %d (the old version's sensors must be gone)", got, n)
	}
	rows := rowsOf(t, e, `SELECT sensor_id, type, unit, min, max, expected_interval, description, lat, lng FROM sensors
		WHERE sensor_id IN ('s-00042', 's-00043') ORDER BY sensor_id`)
	want := [][]any{
		{"s-00042", "temperature", "C", -42.0, 42.0, "00:00:43", "it's 42", 1.5, -2.25},
		{"s-00043", nil, nil, nil, nil, nil, nil, nil, nil},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("sensors rows = %v, want %v", rows, want)
	}
}

// TestRegistryFromCaller: when the caller holds the newest version (WithRegistry, same digest), the
// engine loads it without parsing the archived bytes; for a digest the caller does not hold, it parses
// them. The archived bytes of the held version are not JSON, so a parse would fail.
func TestRegistryFromCaller(t *testing.T) {
	held, err := sensor.Parse([]byte(`{"sensors": [{"id": "a", "unit": "bar"}, {"id": "b"}, {"id": "c"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	asked := map[string]int{}
	have := func(digest string) *sensor.Registry {
		mu.Lock()
		defer mu.Unlock()
		asked[digest]++
		if digest == held.Digest() {
			return held
		}
		return nil
	}
	lk, u := testkit.TempLake(t)
	c := testkit.NewCommitter(t, lk, lake.SensorsSpec())
	now := time.Now()
	c.Commit(t, []lake.SensorsRow{{Digest: held.Digest(), LoadedAt: now.UnixMicro(), Origin: "test", SensorCount: 3, Raw: []byte("not json")}}, "registry-held", 0)
	e := openEngine(t, u, testConfig(), WithRegistry(have))
	testkit.Eventually(t, 10*time.Second, func() bool { return count(t, e, "SELECT count(*) FROM sensors WHERE registered") == 3 }, "held registry not loaded")
	if got := rowsOf(t, e, "SELECT sensor_id, unit FROM sensors WHERE registered ORDER BY sensor_id"); fmt.Sprint(got) != "[[a bar] [b <nil>] [c <nil>]]" {
		t.Fatalf("sensors = %v", got)
	}

	c.Commit(t, []lake.SensorsRow{{Digest: "other", LoadedAt: now.Add(time.Second).UnixMicro(), Origin: "test", SensorCount: 1, Raw: []byte(`{"sensors": [{"id": "z"}]}`)}}, "registry-other", 1)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return count(t, e, "SELECT count(*) FROM sensors WHERE registered AND sensor_id = 'z' AND registry_digest = 'other'") == 1
	}, "a version the caller does not hold is not parsed from the lake")
	mu.Lock()
	defer mu.Unlock()
	if asked[held.Digest()] == 0 || asked["other"] == 0 {
		t.Fatalf("the engine did not ask the caller for both digests: %v", asked)
	}
}
