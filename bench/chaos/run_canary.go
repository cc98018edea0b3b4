package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// canaryID is the sensor of the canary's messages.
const canaryID = "chaos-canary"

// canary is a QoS 1 publisher that sends a small message every interval and records when each PUBACK
// arrives: the publishers' view of whether sluice acknowledges. Its messages are kept in paho's store
// until acknowledged and resent after every reconnection.
type canary struct {
	c     paho.Client
	store *ackTimes
	base  time.Time
	mu    sync.Mutex
	sent  int64
	quit  chan struct{}
	done  chan struct{}
}

// ackTimes is paho's memory store, recording the time of every PUBACK (paho deletes an outgoing
// message from its store when its PUBACK arrives).
type ackTimes struct {
	*paho.MemoryStore
	mu      sync.Mutex
	out     map[string]time.Time // awaiting PUBACK: when each was put in the store (published)
	acks    []time.Time
	sentAt  []time.Time // of each PUBACK in acks, when its message was published
	maxHeld int
}

func (s *ackTimes) Put(key string, m packets.ControlPacket) {
	s.MemoryStore.Put(key, m)
	if strings.HasPrefix(key, "o.") {
		if _, ok := m.(*packets.PublishPacket); ok {
			s.mu.Lock()
			if _, resent := s.out[key]; !resent {
				s.out[key] = time.Now()
			}
			s.maxHeld = max(s.maxHeld, len(s.out))
			s.mu.Unlock()
		}
	}
}

func (s *ackTimes) Del(key string) {
	s.MemoryStore.Del(key)
	s.mu.Lock()
	if sent, ok := s.out[key]; ok {
		delete(s.out, key)
		s.acks, s.sentAt = append(s.acks, time.Now()), append(s.sentAt, sent)
	}
	s.mu.Unlock()
}

// unacked returns how many messages await their PUBACK.
func (s *ackTimes) unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.out)
}

// between counts the PUBACKs that arrived in [from, to).
func (s *ackTimes) between(from, to time.Time) int { return len(s.times(from, to)) }

// times returns the PUBACK times in [from, to).
func (s *ackTimes) times(from, to time.Time) []time.Time {
	acks, _ := s.published(from, to)
	return acks
}

// published returns the PUBACK times in [from, to) and when each one's message was published.
func (s *ackTimes) published(from, to time.Time) (acks, sent []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range s.acks {
		if !t.Before(from) && t.Before(to) {
			acks, sent = append(acks, t), append(sent, s.sentAt[i])
		}
	}
	return acks, sent
}

// firstAfter returns the first PUBACK at or after t.
func (s *ackTimes) firstAfter(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.acks {
		if !a.Before(t) {
			return a, true
		}
	}
	return time.Time{}, false
}

func (s *ackTimes) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks)
}

// startCanary connects to brokerURL (persistent session) and publishes every interval, with at
// most 20 messages unacknowledged.
func startCanary(brokerURL string, interval time.Duration) (*canary, error) {
	store := &ackTimes{MemoryStore: paho.NewMemoryStore(), out: map[string]time.Time{}}
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("chaos-canary-%d", time.Now().UnixNano())).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetWriteTimeout(5 * time.Second).SetOrderMatters(false).SetStore(store)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("canary: connect: %v", tok.Error())
	}
	k := &canary{c: c, store: store, base: time.Now().UTC().Truncate(time.Second), quit: make(chan struct{}), done: make(chan struct{})}
	go k.run(interval)
	return k, nil
}

func (k *canary) run(interval time.Duration) {
	defer close(k.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-k.quit:
			return
		case <-t.C:
		}
		if k.store.unacked() >= 20 {
			continue
		}
		k.mu.Lock()
		i := k.sent
		k.sent++
		k.mu.Unlock()
		k.c.Publish("sensors", 1, false, k.payload(i))
	}
}

func (k *canary) ts(i int64) time.Time { return k.base.Add(time.Duration(i) * time.Millisecond) }

func (k *canary) payload(i int64) string {
	return fmt.Sprintf(`{"sensor_id":%q,"timestamp":%q,"value":%d}`, canaryID, k.ts(i).Format("2006-01-02T15:04:05.000000"), i)
}

// stop stops publishing, waits up to timeout for every message to be acknowledged, disconnects, and
// writes the truth file of everything sent (each line as the simulator writes them). It returns how
// many messages were sent and acknowledged.
func (k *canary) stop(timeout time.Duration, truth string) (sent, acked int64, err error) {
	close(k.quit)
	<-k.done
	deadline := time.Now().Add(timeout)
	for k.store.unacked() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	unacked := k.store.unacked()
	k.c.Disconnect(100)
	sent = k.sent
	acked = int64(k.store.count())
	if unacked > 0 {
		return sent, acked, fmt.Errorf("canary: %d of %d messages never acknowledged", unacked, sent)
	}
	f, err := os.Create(truth)
	if err != nil {
		return sent, acked, err
	}
	w := bufio.NewWriter(f)
	for i := range sent {
		fmt.Fprintf(w, `{"seq":%d,"sensor_id":%q,"metric":"value","ts":%q,"value":%d,"fault":"","topic":"sensors"}`+"\n",
			i+1, canaryID, k.ts(i).Format(time.RFC3339Nano), i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return sent, acked, err
	}
	return sent, acked, f.Close()
}
