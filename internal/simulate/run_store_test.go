package simulate

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func publishPacket(mid uint16) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.MessageID = 1, mid
	return p
}

func TestAckStore(t *testing.T) {
	s := newAckStore()
	s.Open()
	a, b, early := &outMsg{}, &outMsg{}, &outMsg{}
	for _, mid := range []uint16{7, 3, 9} {
		s.Put(fmt.Sprintf("o.%d", mid), publishPacket(mid))
	}
	s.Put("i.4", publishPacket(4)) // inbound: not ours to count
	if n := s.outstanding(); n != 3 {
		t.Fatalf("outstanding %d, want 3", n)
	}
	if got := s.All(); !slices.Equal(got, []string{"o.7", "o.3", "o.9", "i.4"}) {
		t.Fatalf("All() = %v, want insertion order", got)
	}
	s.register(7, a)
	s.register(3, b)
	s.Del("o.9") // acknowledged before its register
	s.register(9, early)
	s.Del("o.7")
	s.Del("o.7") // a second delete of the same key is no second ack
	s.Del("o.5") // never stored
	s.Del("i.4")
	if atomic.LoadUint32(&a.acked) != 1 || atomic.LoadUint32(&b.acked) != 0 || atomic.LoadUint32(&early.acked) != 1 {
		t.Fatalf("acked: a %d b %d early %d, want 1 0 1", a.acked, b.acked, early.acked)
	}
	if n := s.outstanding(); n != 1 || s.Get("o.3") == nil || s.Get("o.7") != nil {
		t.Fatalf("outstanding %d, want only o.3 left", n)
	}
	s.register(0, &outMsg{}) // paho refused it: nothing to wait for
	s.Reset()
	if s.outstanding() != 0 || len(s.All()) != 0 {
		t.Fatal("Reset left entries")
	}
	s.Close()
	s.Put("o.1", publishPacket(1))
	if s.outstanding() != 0 {
		t.Fatal("Put after Close stored a message")
	}
}
