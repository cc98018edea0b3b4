package query

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/lake"
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
