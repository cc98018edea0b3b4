package lake

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// normalise replaces what changes from run to run in a commit: ids, times and byte sizes.
func normalise(b []byte) []byte {
	for _, r := range []struct {
		re  *regexp.Regexp
		rep string
	}{
		{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<uuid>"},
		{regexp.MustCompile(`"(timestamp|modificationTime|lastUpdated|createdTime)":\d+`), `"$1":<ms>`},
		{regexp.MustCompile(`"size":\d+`), `"size":<bytes>`},
		{regexp.MustCompile(`"numOutputBytes":"\d+"`), `"numOutputBytes":"<bytes>"`},
	} {
		b = r.re.ReplaceAll(b, []byte(r.rep))
	}
	return b
}

// TestCommitGolden pins the log format: the creation and first commit of readings/ and raw/.
func TestCommitGolden(t *testing.T) {
	ctx := context.Background()
	lk, _ := lakeKinds[0].open(t)
	rw, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testReadings(20) {
		rw.Add(r)
	}
	rw.Add(Reading{Series: &Series{SensorID: "a-sensor-id-well-over-thirty-two-characters-long", Metric: "m", Flags: []string{"out_of_range"}}, TS: day0 + 61_000_123, Value: -1.5, IngestID: 1})
	if _, err := rw.Commit(ctx, "decoder-p0", 1019); err != nil {
		t.Fatal(err)
	}
	aw, err := NewWriter(ctx, lk, RawSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	aw.Add(RawRow{IngestID: 42, ReceivedAt: day0 + 3_600_000_000, Source: "mqtt", Topic: "plant/a", QoS: 1, Payload: []byte(`{"v":1}`)})
	if _, err := aw.Commit(ctx, "archiver-p0", 42); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, key := range []string{"readings/_delta_log/00000000000000000000.json", "readings/_delta_log/00000000000000000001.json", "raw/_delta_log/00000000000000000001.json"} {
		b, err := lk.bucket.ReadAll(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got = append(append(got, "# "+key+"\n"...), normalise(b)...)
	}
	path := filepath.Join("testdata", "commits.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("commits differ from %s (run with -update after checking the change):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
