package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluice-project/sluice/internal/testkit"
)

// subscriber is a paho client with a persistent session subscribed to "#" at QoS 1; it records the
// (sensor_id, timestamp) of every nested-shape message it receives.
type subscriber struct {
	client paho.Client
	mu     sync.Mutex
	n      int
	keys   map[string]int
}

func subscribe(t *testing.T, url string) *subscriber {
	t.Helper()
	s := &subscriber{keys: map[string]int{}}
	handler := func(_ paho.Client, m paho.Message) {
		var p struct {
			SensorID  string `json:"sensor_id"`
			Timestamp string `json:"timestamp"`
		}
		_ = json.Unmarshal(m.Payload(), &p)
		s.mu.Lock()
		s.n++
		s.keys[p.SensorID+"|"+p.Timestamp]++
		s.mu.Unlock()
	}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("sim-test-sub-%d", time.Now().UnixNano())).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
		SetOrderMatters(false).SetDefaultPublishHandler(handler).
		SetOnConnectHandler(func(c paho.Client) { c.Subscribe("#", 1, handler) })
	s.client = paho.NewClient(opts)
	if tok := s.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		tok := s.client.Subscribe("#", 1, handler)
		return tok.WaitTimeout(time.Second) && tok.Error() == nil
	}, "subscribe")
	t.Cleanup(func() { s.client.Disconnect(100) })
	return s
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *subscriber) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key] > 0
}

func truthKey(l truthLine) string {
	ts, _ := time.Parse(time.RFC3339Nano, l.TS)
	return l.SensorID + "|" + ts.UTC().Format(isoMicro)
}

func TestRunMosquitto(t *testing.T) {
	m := testkit.StartMosquitto(t)
	sub := subscribe(t, m.URL)
	cfg := quickConfig(t, m.URL)
	cfg.Count, cfg.Rate, cfg.Connections, cfg.Fleet = 2000, 10000, 4, 40
	stats, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Published != 2000 || stats.Unacked != 0 {
		t.Fatalf("stats %+v", stats)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return sub.count() >= 2000 }, "subscriber received %d of 2000", sub.count())
	time.Sleep(50 * time.Millisecond)
	if n := sub.count(); n != 2000 {
		t.Fatalf("subscriber received %d, want exactly 2000", n)
	}
	for _, l := range readTruth(t, cfg.Truth) {
		if !sub.has(truthKey(l)) {
			t.Fatalf("truth line %+v never arrived", l)
		}
	}
}

// TestRunReconnect restarts the broker in the middle of a run: the simulator reconnects, re-sends
// what was not acknowledged, and every message it counts as published reaches the subscriber.
func TestRunReconnect(t *testing.T) {
	m := testkit.StartMosquitto(t)
	sub := subscribe(t, m.URL)
	cfg := quickConfig(t, m.URL)
	cfg.Count, cfg.Rate, cfg.Fleet = 3000, 1000, 20
	type result struct {
		stats Stats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Run(context.Background(), cfg, nil)
		done <- result{s, err}
	}()
	testkit.Eventually(t, 10*time.Second, func() bool { return sub.count() >= 1000 }, "subscriber received %d of the first 1000", sub.count())
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not finish within 60s of the restart")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.stats.Published != 3000 || r.stats.Reconnects < 1 || r.stats.Unacked != 0 {
		t.Fatalf("stats %+v, want 3000 published after at least one reconnect", r.stats)
	}
	truth := readTruth(t, cfg.Truth)
	if len(truth) != 3000 {
		t.Fatalf("%d truth lines, want 3000", len(truth))
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		for _, l := range truth {
			if !sub.has(truthKey(l)) {
				return false
			}
		}
		return true
	}, "messages counted as published never reached the subscriber")
	t.Logf("stats %+v; subscriber received %d messages (re-sent copies included)", r.stats, sub.count())
}
