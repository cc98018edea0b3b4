package simulate

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ackStore is the paho.Store of one connection: where paho keeps each QoS 1 message from PUBLISH to
// PUBACK, and therefore the one place that knows for certain when the broker acknowledged a message.
// paho's tokens do not: a token completes without error when paho re-sends its message after a
// reconnect (before the copy is acknowledged), and with an error when a write fails although the
// message stays stored and is re-sent later. So the simulator counts a QoS 1 message as published when
// paho deletes it from this store on its PUBACK, and uses tokens only to pace the window.
//
// All returns keys in the order they were stored, so that re-sends after a reconnect keep each
// sensor's messages in order (paho's MemoryStore returns them in map order).
type ackStore struct {
	mu      sync.Mutex
	open    bool
	seq     uint64
	entries map[string]storeEntry
	waiting map[uint16]*outMsg // stored QoS 1 publishes by message id
	early   map[uint16]bool    // acknowledged before register was called for them
	count   int                // outbound publishes held
}

type storeEntry struct {
	pkt packets.ControlPacket
	seq uint64
}

func newAckStore() *ackStore {
	return &ackStore{entries: map[string]storeEntry{}, waiting: map[uint16]*outMsg{}, early: map[uint16]bool{}}
}

// register ties message id mid, which paho gave m, to m: m.acked is set when the PUBACK arrives (or
// now, if it already did). mid 0 means paho refused the message without storing it.
func (s *ackStore) register(mid uint16, m *outMsg) {
	if mid == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.early[mid] {
		delete(s.early, mid)
		atomic.StoreUint32(&m.acked, 1)
		return
	}
	s.waiting[mid] = m
}

// outstanding returns how many QoS 1 messages are stored, unacknowledged.
func (s *ackStore) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Open implements paho.Store.
func (s *ackStore) Open() {
	s.mu.Lock()
	s.open = true
	s.mu.Unlock()
}

// Close implements paho.Store.
func (s *ackStore) Close() {
	s.mu.Lock()
	s.open = false
	s.mu.Unlock()
}

// Put implements paho.Store.
func (s *ackStore) Put(key string, pkt packets.ControlPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open {
		return
	}
	if _, ok := s.entries[key]; !ok && isOutboundPublish(key, pkt) {
		s.count++
	}
	s.seq++
	s.entries[key] = storeEntry{pkt: pkt, seq: s.seq}
}

// Get implements paho.Store.
func (s *ackStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[key].pkt
}

// All implements paho.Store: keys in the order they were first stored.
func (s *ackStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.entries))
	for k := range s.entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(s.entries[a].seq, s.entries[b].seq) })
	return keys
}

// Del implements paho.Store. paho deletes an outbound publish when its PUBACK arrives.
func (s *ackStore) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return
	}
	delete(s.entries, key)
	if !isOutboundPublish(key, e.pkt) {
		return
	}
	s.count--
	mid := e.pkt.Details().MessageID
	if m := s.waiting[mid]; m != nil {
		delete(s.waiting, mid)
		atomic.StoreUint32(&m.acked, 1)
	} else {
		s.early[mid] = true
	}
}

// Reset implements paho.Store (paho calls it when a clean session starts).
func (s *ackStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.entries)
	s.count = 0
}

func isOutboundPublish(key string, pkt packets.ControlPacket) bool {
	_, ok := pkt.(*packets.PublishPacket)
	return ok && strings.HasPrefix(key, "o.")
}
