package mqtt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluice-project/sluice/internal/envelope"
	sluicelog "github.com/sluice-project/sluice/internal/log"
)

// FuzzEncodeEntry feeds the envelope encoding what a broker may send (any topic up to the MQTT limit,
// any payload bytes, either QoS) into a reused buffer: the entry must decode to exactly the message,
// with the topic as its key, whatever the buffer held before. (The MQTT 3.1.1 packets themselves are
// read by packetReader: FuzzPacketReader; MQTT 5's by paho.golang.)
func FuzzEncodeEntry(f *testing.F) {
	f.Add("", []byte{}, byte(0), int64(0), []byte{})
	f.Add("t/1", []byte(`{"v":1}`), byte(1), int64(1795369225123456789), []byte("stale bytes from an earlier message"))
	f.Add(strings.Repeat("a", envelope.MaxTopicLen), []byte("x"), byte(1), int64(-1), []byte{})
	f.Add("s/1", append([]byte(`{"v":1}`), 0xff, 0x00, 0x80), byte(0), int64(300), bytes.Repeat([]byte{0xff}, 64))
	f.Add("s/\x00/+/#", []byte{0x01}, byte(1), int64(1<<62), []byte{1, 1, 1})
	f.Fuzz(func(t *testing.T, topic string, payload []byte, qos byte, ts int64, prior []byte) {
		if len(topic) > envelope.MaxTopicLen {
			return // no broker can send it: MQTT strings are at most 65535 bytes
		}
		qos %= 2
		// The fuzzer may hand out arguments that share memory; the source's buffer never shares memory
		// with a received payload (it comes from the source's pool), so give prior its own.
		prior = bytes.Clone(prior)
		var e sluicelog.Entry
		buf := encodeEntry(prior[:0], &e, ts, qos, topic, payload)
		if &buf[0] != &e.Value[0] || len(buf) != len(e.Value) {
			t.Fatalf("entry value is not the returned buffer")
		}
		if string(e.Key) != topic {
			t.Fatalf("key %q, want the topic %q", e.Key, topic)
		}
		var got envelope.Envelope
		if err := envelope.Decode(e.Value, &got); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.Topic != topic || !bytes.Equal(got.Payload, payload) || got.QoS != qos || got.ReceivedAt != ts || got.Source != envelope.SourceMQTT {
			t.Fatalf("decoded %+v, want topic %q payload %q qos %d ts %d source mqtt", got, topic, payload, qos, ts)
		}
		if cap(e.Key) != len(e.Key) {
			t.Fatalf("key has spare capacity %d: appending to it would overwrite the payload", cap(e.Key)-len(e.Key))
		}
	})
}

// FuzzValidFilter checks that filter validation never panics and accepts only filters whose wildcards
// stand alone in their level, # last.
func FuzzValidFilter(f *testing.F) {
	for _, s := range []string{"", "#", "a/#", "+/b/+", "a/#/b", "a+", "$share/g/a/#", "a\x00b", strings.Repeat("a/", 40000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validFilter(s) != nil {
			return
		}
		levels := strings.Split(s, "/")
		for i, l := range levels {
			if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) || strings.Contains(l, "+") && l != "+" {
				t.Fatalf("accepted %q with a misplaced wildcard", s)
			}
		}
		if s == "" || len(s) > 65535 || strings.ContainsRune(s, 0) {
			t.Fatalf("accepted %q", s)
		}
	})
}
