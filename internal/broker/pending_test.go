package broker

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-project/sluice/internal/testkit"
)

// pendingTopic and the decimal payloads ("1" to "32") cost pendingOverhead + 14 or 15 bytes, so
// minPendingBytes (64KiB) holds pendingFits of them at once.
const (
	pendingTopic = "plant/pending"
	pendingFits  = minPendingBytes / (pendingOverhead + len(pendingTopic) + 2) // 31
)

// heldSteady waits until the gated log holds want appends and checks that no more arrive meanwhile.
func heldSteady(t *testing.T, l *gatedLog, want int) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool { return int(l.waiting.Load()) >= want }, "log holds %d appends, want %d", l.waiting.Load(), want)
	time.Sleep(100 * time.Millisecond) // publishers still have messages to send: none may get past the budget
	if n := int(l.waiting.Load()); n != want {
		t.Fatalf("log holds %d appends, want %d (what broker.pending_bytes has room for)", n, want)
	}
}

// openOnFailure opens l's gate when the test ends with it still closed (the test failed before it
// released the log), so that the broker's Close, which waits for every append, does not hang.
func openOnFailure(t *testing.T, l *gatedLog) {
	t.Cleanup(func() {
		l.mu.Lock()
		opened := l.opened
		l.mu.Unlock()
		if !opened {
			l.release()
		}
	})
}

// TestPendingBytes: broker.pending_bytes bounds the messages held for the log over all connections,
// QoS 0 and pipelined QoS 1 alike; connections past it wait (nothing is lost), and once the log
// stores what it holds every message arrives and every share is given back.
func TestPendingBytes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pipeline bool
		qos      byte
	}{{"qos0", false, 0}, {"qos0-pipelined", true, 0}, {"qos1-pipelined", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newGatedLog()
			cfg := modeConfig(tc.pipeline)
			cfg.PendingBytes = minPendingBytes
			b, _ := startBroker(t, cfg, l)
			openOnFailure(t, l)       // runs before the broker's Close
			const conns, each = 4, 25 // 100 messages, payloads "1".."25"
			clients := make([]*raw3, conns)
			for i := range clients {
				clients[i], _ = dialRaw3(t, b.Addr().String(), fmt.Sprintf("pending-%d", i), true)
				for id := 1; id <= each; id++ {
					if err := clients[i].writePublish(uint16(id), pendingTopic, []byte(fmt.Sprint(id)), tc.qos, false); err != nil {
						t.Fatal(err)
					}
				}
				if err := clients[i].flush(); err != nil {
					t.Fatal(err)
				}
			}
			want := pendingFits // whichever connections they came from
			heldSteady(t, l, want)
			held := testutil.ToFloat64(b.m.pending)
			if lo, hi := float64(want*(pendingOverhead+len(pendingTopic)+1)), float64(want*(pendingOverhead+len(pendingTopic)+2)); held < lo || held > hi {
				t.Fatalf("sluice_broker_pending_bytes %v, want %v-%v", held, lo, hi)
			}
			if w := testutil.ToFloat64(b.m.pendingWaits); w < 1 {
				t.Fatalf("sluice_broker_pending_waits_total %v, want at least 1", w)
			}
			l.release()
			got := readLog(t, l.Log, conns*each)
			perConn := map[string]int{}
			for _, e := range got {
				perConn[string(e.Payload)]++
			}
			for id := 1; id <= each; id++ {
				if n := perConn[fmt.Sprint(id)]; n != conns {
					t.Fatalf("payload %d stored %d times, want %d (once per connection)", id, n, conns)
				}
			}
			if tc.qos == 1 {
				for _, c := range clients {
					c.expectPubacks(t, 1, each)
				}
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return testutil.ToFloat64(b.m.pending) == 0 },
				"sluice_broker_pending_bytes %v once everything is stored, want 0", testutil.ToFloat64(b.m.pending))
			if e := testutil.ToFloat64(b.m.appendErrors[tc.qos]); e != 0 {
				t.Fatalf("%v append errors, want 0", e)
			}
		})
	}
}

// TestPendingBytesTimeout: a QoS 1 message that finds no room in broker.pending_bytes within
// append_timeout disconnects its publisher without an acknowledgement (it resends); a QoS 0 message
// is counted as not stored. What the budget held is stored once the log writes again.
func TestPendingBytesTimeout(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			l := newGatedLog()
			cfg := modeConfig(true)
			cfg.PendingBytes, cfg.AppendTimeout = minPendingBytes, 300*time.Millisecond
			b, _ := startBroker(t, cfg, l)
			openOnFailure(t, l) // runs before the broker's Close
			c, _ := dialRaw3(t, b.Addr().String(), "stuck", true)
			for id := 1; id <= pendingFits+1; id++ { // one more than the budget holds
				if err := c.writePublish(uint16(id), pendingTopic, []byte(fmt.Sprint(id)), qos, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
			heldSteady(t, l, pendingFits)
			if qos == 1 {
				typ, body, err := c.read(10 * time.Second)
				if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("read type %d %v err %v, want the connection closed", typ, body, err)
				}
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return testutil.ToFloat64(b.m.appendErrors[qos]) == 1 },
				"%v append errors, want 1", testutil.ToFloat64(b.m.appendErrors[qos]))
			l.release()
			readLog(t, l.Log, pendingFits)
		})
	}
}
