package broker

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// TestSubscriberQueue: a QoS 1 subscriber that stops acknowledging gets broker.subscriber_queue
// messages and no more; the rest are dropped for it and counted, while every published message is
// still acknowledged and in the log. Once it acknowledges, it receives again.
func TestSubscriberQueue(t *testing.T) {
	const queue, n = 16, 100
	cfg := testConfig()
	cfg.SubscriberQueue = queue
	l := memlog.New()
	b, _ := startBroker(t, cfg, l)
	addr := b.Addr().String()

	sub, _ := dialRaw3(t, addr, "slow-sub", true)
	sub.subscribe(t, 1, "plant/#", 1)
	pub, _ := dialRaw3(t, addr, "pub", true)
	pub.publishSeq(t, "plant/a", 1, n)
	pub.expectPubacks(t, 1, n)
	readLog(t, l, n)

	ids := readPublishes(t, sub, 300*time.Millisecond)
	if len(ids) != queue {
		t.Fatalf("slow subscriber received %d messages, want exactly %d (broker.subscriber_queue)", len(ids), queue)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(b.m.dropped) == n-queue },
		"sluice_broker_subscriber_dropped_total is %v, want %d", testutil.ToFloat64(b.m.dropped), n-queue)

	for _, id := range ids {
		if err := sub.writePuback(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the PUBACKs free the queue
	pub.publishSeq(t, "plant/a", n+1, n+queue)
	pub.expectPubacks(t, n+1, n+queue)
	if again := readPublishes(t, sub, 300*time.Millisecond); len(again) != queue {
		t.Fatalf("after acknowledging, the subscriber received %d messages, want %d", len(again), queue)
	}
	if d := testutil.ToFloat64(b.m.dropped); d != n-queue {
		t.Fatalf("sluice_broker_subscriber_dropped_total is %v after the queue drained, want %d", d, n-queue)
	}
	readLog(t, l, n+queue)
}

// readPublishes reads PUBLISH packets until none arrives for quiet and returns their packet ids.
func readPublishes(t *testing.T, c *raw3, quiet time.Duration) []uint16 {
	t.Helper()
	var ids []uint16
	for {
		typ, body, err := c.read(quiet)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		if typ != packets.Publish {
			t.Fatalf("got packet type %d, want PUBLISH", typ)
		}
		tl := int(binary.BigEndian.Uint16(body))
		ids = append(ids, binary.BigEndian.Uint16(body[2+tl:]))
	}
}
