package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/sluice-project/sluice/internal/testkit"
)

func quickConfig(t testing.TB, url string) Config {
	cfg := DefaultConfig()
	cfg.Broker = url
	cfg.Truth = filepath.Join(t.TempDir(), "truth.ndjson")
	cfg.DrainTimeout = 10 * time.Second
	return cfg
}

// TestRunCount publishes exactly Count messages, each received once, each with a truth line.
func TestRunCount(t *testing.T) {
	cases := []struct {
		name  string
		shape string
		qos   int
		conns int
		fleet int
	}{
		{"qos1 one connection", ShapeNested, 1, 1, 0},
		{"qos1 four connections", ShapeFlatUnix, 1, 4, 40},
		{"qos0 one connection", ShapeMetricType, 0, 1, 0},
		{"qos0 three connections", ShapeTopicMS, 0, 3, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t)
			cfg := quickConfig(t, b.URL)
			cfg.Shape, cfg.QoS, cfg.Connections, cfg.Fleet = c.shape, c.qos, c.conns, c.fleet
			cfg.Count, cfg.Rate = 500, 20000
			stats, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Published != 500 || stats.Sent != 500 || stats.Unacked != 0 {
				t.Fatalf("stats %+v, want 500 published and sent", stats)
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return b.count() >= 500 }, "broker received %d of 500", b.count())
			time.Sleep(50 * time.Millisecond) // nothing more may arrive
			got := b.received()
			if len(got) != 500 {
				t.Fatalf("broker received %d messages, want exactly 500", len(got))
			}
			truth := readTruth(t, cfg.Truth)
			if len(truth) != 500 {
				t.Fatalf("%d truth lines, want 500", len(truth))
			}
			// Every truth line names a message the broker received, on its topic; seqs are 1…500.
			byTopic := map[string]int{}
			for _, r := range got {
				byTopic[r.topic]++
			}
			var seqs []int64
			for _, l := range truth {
				seqs = append(seqs, l.Seq)
				byTopic[l.Topic]--
			}
			slices.Sort(seqs)
			for i, s := range seqs {
				if s != int64(i+1) {
					t.Fatalf("truth seqs are not 1…500: %v…", seqs[:min(len(seqs), i+3)])
				}
			}
			for topic, n := range byTopic {
				if n != 0 {
					t.Fatalf("topic %q: broker and truth differ by %d", topic, n)
				}
			}
		})
	}
}

// TestRunPayloadsMatchTruth checks, message by message, that what the broker received is what the
// truth file says, faults included.
func TestRunPayloadsMatchTruth(t *testing.T) {
	b := startBroker(t)
	cfg := quickConfig(t, b.URL)
	cfg.Count, cfg.Rate, cfg.Fleet = 2000, 20000, 10
	cfg.Faults = FaultsConfig{Duplicate: 0.05, Malformed: 0.05, Late: 0.05}
	stats, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Published != 2000 || stats.Faults.Duplicate == 0 || stats.Faults.Malformed == 0 || stats.Faults.Late == 0 {
		t.Fatalf("stats %+v", stats)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return b.count() >= 2000 }, "broker received %d of 2000", b.count())
	truth := readTruth(t, cfg.Truth)
	faults := map[string]int64{}
	for _, l := range truth {
		faults[l.Fault]++
	}
	if faults["duplicate"] != stats.Faults.Duplicate || faults["malformed"] != stats.Faults.Malformed || faults["late"] != stats.Faults.Late {
		t.Fatalf("truth counts %v, stats %+v", faults, stats.Faults)
	}
	// Messages that parse carry the sensor and timestamp of a truth line; a sensor's
	// timestamps arrive in increasing order unless a line says late.
	type key struct{ sensor, ts string }
	want := map[key]truthLine{}
	for _, l := range truth {
		want[key{l.SensorID, l.TS}] = l
	}
	lastTS := map[string]time.Time{}
	parsed := 0
	for _, r := range b.received() {
		var p struct {
			SensorID  string  `json:"sensor_id"`
			Timestamp string  `json:"timestamp"`
			Value     float64 `json:"value"`
		}
		if json.Unmarshal(r.payload, &p) != nil {
			continue
		}
		parsed++
		ts, err := time.Parse(isoMicro, p.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		l, ok := want[key{p.SensorID, ts.UTC().Format(time.RFC3339Nano)}]
		if !ok || (l.Value != nil && *l.Value != p.Value && l.Kind == "") {
			t.Fatalf("received %s, truth has %+v", r.payload, l)
		}
		if l.Fault == "late" || l.Fault == "duplicate" {
			continue
		}
		if prev := lastTS[p.SensorID]; !ts.After(prev) {
			t.Fatalf("%s: %v after %v without a fault", p.SensorID, ts, prev)
		}
		lastTS[p.SensorID] = ts
	}
	if parsed < 1800 {
		t.Fatalf("only %d of 2000 payloads parse", parsed)
	}
}

// TestRunRate checks that rate mode sends the target rate: counts over a fixed duration.
func TestRunRate(t *testing.T) {
	b := startBroker(t)
	cfg := quickConfig(t, b.URL)
	cfg.Rate, cfg.Duration, cfg.Connections = 2000, 2*time.Second, 2
	stats, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 2s at 2000/s is 4000 slots (slot 0 at the start, the last before 2s).
	if stats.Published < 3600 || stats.Published > 4000 {
		t.Fatalf("published %d in 2s at 2000/s, want 3600 to 4000 (stats %+v)", stats.Published, stats)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return int64(b.count()) == stats.Published }, "broker received %d, published %d", b.count(), stats.Published)
	// Elapsed runs to the last acknowledgement: at least to the slot of the last message published,
	// slot Published-1, due at (Published-1)/2000 s (slots are taken in order, none skipped here).
	if r, want := stats.Rate(), float64(stats.Published)/stats.Elapsed.Seconds(); r != want || stats.Elapsed < time.Duration(stats.Published-1)*time.Second/2000 {
		t.Fatalf("Rate() = %v, want %v over %v (%d published)", r, want, stats.Elapsed, stats.Published)
	}
}

// TestRunInterval checks interval mode: each sensor every interval, phases spread.
func TestRunInterval(t *testing.T) {
	b := startBroker(t)
	cfg := quickConfig(t, b.URL)
	cfg.Interval, cfg.Count = 50*time.Millisecond, 40 // 5 sensors: 8 messages each, a slot every 10ms
	stats, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Published != 40 {
		t.Fatalf("published %d, want 40", stats.Published)
	}
	truth := readTruth(t, cfg.Truth)
	slices.SortFunc(truth, func(a, b truthLine) int { return int(a.Seq - b.Seq) })
	first, _ := time.Parse(time.RFC3339Nano, truth[0].TS)
	last := map[string]time.Time{}
	for i, l := range truth {
		ts, _ := time.Parse(time.RFC3339Nano, l.TS)
		if want := first.Add(time.Duration(i) * 10 * time.Millisecond); !ts.Equal(want) {
			t.Fatalf("message %d at %v, want %v (slots 10ms apart)", i, ts, want)
		}
		if p, ok := last[l.SensorID]; ok && ts.Sub(p) != 50*time.Millisecond {
			t.Fatalf("%s: %v between messages, want the 50ms interval", l.SensorID, ts.Sub(p))
		}
		last[l.SensorID] = ts
	}
	if len(last) != 5 {
		t.Fatalf("%d sensors published, want 5", len(last))
	}
}

func TestRunStops(t *testing.T) {
	cases := []struct {
		name     string
		duration time.Duration
		cancel   time.Duration
		wantErr  error
	}{
		{"duration", 300 * time.Millisecond, 0, nil},
		{"cancel", 0, 300 * time.Millisecond, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t)
			cfg := quickConfig(t, b.URL)
			cfg.Rate, cfg.Duration = 1000, c.duration
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.cancel > 0 {
				time.AfterFunc(c.cancel, cancel)
			}
			begin := time.Now()
			stats, err := Run(ctx, cfg, nil)
			took := time.Since(begin)
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if took > 1500*time.Millisecond {
				t.Fatalf("Run took %v to stop after 300ms", took)
			}
			// At most one message per ms Run ran; at least 2/3 of the 300 slots a duration of 300ms
			// holds (a cancel 300ms after the call leaves less after connecting, under load).
			least := int64(200)
			if c.cancel > 0 {
				least = 50
			}
			if stats.Published < least || stats.Published > took.Milliseconds()+1 {
				t.Fatalf("published %d in %v at 1000/s", stats.Published, took)
			}
			if n := len(readTruth(t, cfg.Truth)); int64(n) != stats.Published {
				t.Fatalf("%d truth lines, %d published", n, stats.Published)
			}
		})
	}
}

func TestRunUnreachable(t *testing.T) {
	cfg := quickConfig(t, fmt.Sprintf("mqtt://127.0.0.1:%d", testkit.FreePort(t)))
	cfg.Count = 1
	begin := time.Now()
	_, err := Run(context.Background(), cfg, nil)
	if err == nil || time.Since(begin) > 11*time.Second {
		t.Fatalf("err = %v after %v, want a connect error", err, time.Since(begin))
	}
	t.Log(err)
}

func TestRunInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.QoS = 5
	if _, err := Run(context.Background(), cfg, nil); err == nil {
		t.Fatal("Run accepted qos 5")
	}
}

func TestRunWebsocket(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)) // mochi's websocket listener cannot report a :0 port
	b := startBroker(t, listeners.NewWebsocket(listeners.Config{ID: "ws", Address: addr}))
	testkit.WaitListening(t, addr, 5*time.Second)
	cfg := quickConfig(t, "ws://"+addr)
	cfg.Count, cfg.Rate = 300, 10000
	stats, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Published != 300 {
		t.Fatalf("published %d over websocket, want 300", stats.Published)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return b.count() == 300 }, "broker received %d of 300", b.count())
}
