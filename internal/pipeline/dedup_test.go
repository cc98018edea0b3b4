package pipeline

import (
	"testing"
	"time"
)

func TestDedup(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := NewDedup(DedupConfig{Window: 2 * time.Minute, MaxKeys: 1000})
	d.now = func() time.Time { return now }
	d.rotated = now

	steps := []struct {
		name           string
		sensor, metric string
		ts             int64
		advance        time.Duration
		want           bool
	}{
		{"first", "s1", "temperature", 100, 0, false},
		{"same key", "s1", "temperature", 100, 0, true},
		{"other ts", "s1", "temperature", 101, 0, false},
		{"other metric", "s1", "humidity", 100, 0, false},
		{"other sensor", "s2", "temperature", 100, 0, false},
		{"after half window still seen", "s1", "temperature", 100, 61 * time.Second, true},
		{"refreshed by the repeat: seen after another half", "s1", "temperature", 100, 61 * time.Second, true},
		{"an unrefreshed key is forgotten after the window", "s2", "temperature", 100, 0, false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		d.Tick()
		if got := d.Seen(s.sensor, s.metric, s.ts); got != s.want {
			t.Fatalf("%s: Seen(%s,%s,%d) = %v, want %v", s.name, s.sensor, s.metric, s.ts, got, s.want)
		}
	}
}

func TestDedupMaxKeysBoundsMemory(t *testing.T) {
	d := NewDedup(DedupConfig{Window: time.Hour, MaxKeys: 1000})
	for i := int64(0); i < 10_000; i++ {
		if d.Seen("s", "m", i) {
			t.Fatalf("key %d reported as a duplicate", i)
		}
		if d.Len() > 1000 {
			t.Fatalf("holds %d keys, cap is 1000", d.Len())
		}
	}
	// The most recent MaxKeys/2 keys are always remembered.
	for i := int64(10_000 - 500); i < 10_000; i++ {
		if !d.Seen("s", "m", i) {
			t.Fatalf("recent key %d forgotten", i)
		}
	}
}

func TestDedupOff(t *testing.T) {
	d := NewDedup(DedupConfig{})
	if d.Seen("s", "m", 1) || d.Seen("s", "m", 1) {
		t.Fatal("window 0 must not deduplicate")
	}
}

func BenchmarkDedupSeen(b *testing.B) {
	d := NewDedup(DefaultDedupConfig())
	sensors := make([]string, 1000)
	for i := range sensors {
		sensors[i] = "sensor-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		d.Seen(sensors[i%1000], "temperature", i/1000)
		i++
	}
}
