package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		env  Envelope
	}{
		{"mqtt", Envelope{ReceivedAt: 1795369225123456789, Source: SourceMQTT, QoS: 1, Topic: "plant/a/line2/pump-07/temperature", Payload: []byte(`{"ts":1795369225123,"v":71.3}`)}},
		{"empty payload and topic", Envelope{ReceivedAt: 1, Source: SourceHTTP}},
		{"binary payload", Envelope{ReceivedAt: 0, Source: SourceKafka, Topic: "t", Payload: []byte{0, 0xff, 0x80, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.env.AppendBinary([]byte("prefix"))
			if got := len(b) - len("prefix"); got != c.env.Size() {
				t.Fatalf("Size() = %d, encoding has %d bytes", c.env.Size(), got)
			}
			var got Envelope
			if err := Decode(b[len("prefix"):], &got); err != nil {
				t.Fatal(err)
			}
			if got.ReceivedAt != c.env.ReceivedAt || got.Source != c.env.Source || got.QoS != c.env.QoS || got.Topic != c.env.Topic || !bytes.Equal(got.Payload, c.env.Payload) {
				t.Fatalf("round trip: got %+v, want %+v", got, c.env)
			}
		})
	}
}

// TestGolden pins the encoding: a change here breaks every WAL and Kafka topic written before it.
func TestGolden(t *testing.T) {
	e := Envelope{ReceivedAt: 300, Source: SourceMQTT, QoS: 1, Topic: "s/1", Payload: []byte("{}")}
	want := []byte{1, 1, 1, 0xac, 0x02, 3, 's', '/', '1', '{', '}'}
	if got := e.AppendBinary(nil); !bytes.Equal(got, want) {
		t.Fatalf("encoding = %v, want %v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only", []byte{1, 1}, ErrShort},
		{"bad version", []byte{9, 1, 1, 0, 0}, ErrVersion},
		{"truncated time", []byte{1, 1, 1, 0x80}, ErrShort},
		{"truncated topic length", []byte{1, 1, 1, 5}, ErrShort},
		{"topic longer than record", []byte{1, 1, 1, 5, 10, 'a'}, ErrShort},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e Envelope
			if err := Decode(c.in, &e); !errors.Is(err, c.want) {
				t.Fatalf("Decode(%v) = %v, want %v", c.in, err, c.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 1, 1, 0xac, 0x02, 3, 's', '/', '1', '{', '}'})
	f.Add(append((&Envelope{Topic: string(make([]byte, MaxTopicLen)), Payload: []byte("x")}).AppendBinary(nil), 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		if err := Decode(b, &e); err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		if got := e.AppendBinary(nil); !bytes.Equal(got, b) && !nonCanonicalVarint(b) {
			t.Fatalf("re-encoding %v gave %v", b, got)
		}
	})
}

// nonCanonicalVarint reports whether b's varints use more bytes than needed (valid input that does not
// re-encode to itself).
func nonCanonicalVarint(b []byte) bool {
	var e Envelope
	_ = Decode(b, &e)
	return e.Size() != len(b)
}

func BenchmarkAppendBinary(b *testing.B) {
	e := Envelope{ReceivedAt: 1795369225123456789, Source: SourceMQTT, QoS: 1, Topic: "sensors", Payload: make([]byte, 160)}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(e.Size()))
	for b.Loop() {
		buf = e.AppendBinary(buf[:0])
	}
}

func BenchmarkDecode(b *testing.B) {
	e := Envelope{ReceivedAt: 1795369225123456789, Source: SourceMQTT, QoS: 1, Topic: "sensors", Payload: make([]byte, 160)}
	buf := e.AppendBinary(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	var out Envelope
	for b.Loop() {
		if err := Decode(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}
