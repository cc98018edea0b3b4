package broker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
)

// TestMaxMessageSize: a payload of max_message_size is stored; a packet past the limit closes the
// connection and stores nothing.
func TestMaxMessageSize(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageSize = 1 << 10
	l := memlog.New()
	b, _ := startBroker(t, cfg, l)
	c, _ := dialRaw3(t, b.Addr().String(), "big", true)
	exact := bytes.Repeat([]byte{0xab}, 1<<10)
	if err := c.writePublish(1, "plant/big", exact, 1, false); err != nil {
		t.Fatal(err)
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	if id, err := c.readPuback(10 * time.Second); err != nil || id != 1 {
		t.Fatalf("PUBACK %d %v", id, err)
	}
	tooBig := make([]byte, 1<<10+packetHeadroom)
	if err := c.writePublish(2, "plant/big", tooBig, 1, false); err != nil {
		t.Fatal(err)
	}
	_ = c.flush() // the broker may close before reading it all
	if typ, _, err := c.read(10 * time.Second); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after an oversized packet: type %d err %v, want the connection closed", typ, err)
	}
	got := readLog(t, l, 1)
	if !bytes.Equal(got[0].Payload, exact) {
		t.Fatalf("stored %d bytes", len(got[0].Payload))
	}
}

// captureLog keeps the entries of the last append, copied.
type captureLog struct {
	entries []log.Entry
	err     error
}

func (c *captureLog) Append(_ context.Context, es ...log.Entry) error {
	c.entries = c.entries[:0]
	for _, e := range es {
		c.entries = append(c.entries, log.Entry{Key: bytes.Clone(e.Key), Value: bytes.Clone(e.Value)})
	}
	return c.err
}

func (c *captureLog) AppendAsync(es []log.Entry, done func(error)) {
	done(c.Append(context.Background(), es...))
}

// FuzzIngest feeds the hook any topic, payload and QoS, as a client could send them, and checks the log
// gets exactly one envelope holding them untouched (or nothing, for $ topics), keyed by the topic.
func FuzzIngest(f *testing.F) {
	f.Add("", []byte{}, byte(0))
	f.Add("plant/a/temp", []byte(`{"v":1}`), byte(1))
	f.Add("$SYS/x", []byte("x"), byte(1))
	f.Add(strings.Repeat("t", envelope.MaxTopicLen), bytes.Repeat([]byte{0xff}, 4096), byte(2))
	f.Add("a/b\x00\xff", append([]byte(`{"v":1}`), 0x00, 0xc3, 0x28), byte(7))
	cl := &mqtt.Client{ID: "fuzz"}
	capt := &captureLog{}
	b, err := New(modeConfig(false), capt, nil, nil) // the synchronous hook: it appends before it returns
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte, qos byte) {
		capt.entries = capt.entries[:0]
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos & 3}, TopicName: topic, Payload: payload}
		if err := b.ingest(cl, pk); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(topic, "$") || len(topic) > envelope.MaxTopicLen {
			if strings.HasPrefix(topic, "$") && len(capt.entries) != 0 {
				t.Fatalf("$ topic %q appended", topic)
			}
			return
		}
		if len(capt.entries) != 1 {
			t.Fatalf("%d entries appended, want 1", len(capt.entries))
		}
		var e envelope.Envelope
		if err := envelope.Decode(capt.entries[0].Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.Topic != topic || !bytes.Equal(e.Payload, payload) || e.QoS != min(qos&3, 2) || e.Source != envelope.SourceMQTT ||
			string(capt.entries[0].Key) != topic {
			t.Fatalf("envelope %+v key %q; want topic %q payload %q qos %d", e, capt.entries[0].Key, topic, payload, min(qos&3, 2))
		}
	})
}

// BenchmarkIngest is the hook's own cost per message (envelope, pooled buffer, metrics) on a log that
// returns at once.
func BenchmarkIngest(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run([]string{"qos0", "qos1"}[qos], func(b *testing.B) {
			br, err := New(testConfig(), nopLog{}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			cl := &mqtt.Client{ID: "bench"}
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: "plant/a/line2/pump-07/temperature", Payload: make([]byte, 160)}
			b.ReportAllocs()
			b.SetBytes(int64(len(pk.Payload)))
			for b.Loop() {
				if err := br.ingest(cl, pk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type nopLog struct{}

func (nopLog) Append(context.Context, ...log.Entry) error  { return nil }
func (nopLog) AppendAsync(_ []log.Entry, done func(error)) { done(nil) }
