package mqtt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// encode returns the wire bytes of ps, encoded by paho.mqtt.golang.
func encode(t testing.TB, ps ...packets.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range ps {
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func publishPacket(topic string, payload []byte, qos byte, id uint16) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Payload, p.Qos, p.MessageID = topic, payload, qos, id
	return p
}

// readAll reads packets from b until an error, as packetReader returns them: a PUBLISH as "PUBLISH
// qos id topic payload", anything else as its String().
func readAll(b []byte) ([]string, error) {
	r := newPacketReader(bytes.NewReader(b))
	var out []string
	for {
		var pub publish
		p, err := r.next(&pub)
		if err != nil {
			return out, err
		}
		if p == nil {
			out = append(out, fmt.Sprintf("PUBLISH %d %d %q %q", pub.qos, pub.id, pub.topic, pub.payload))
		} else {
			out = append(out, p.String())
		}
	}
}

// readAllPaho is readAll with packets.ReadPacket. A PUBLISH with QoS 3 (which paho takes) ends it
// with errQoS3, for packetReader refuses it.
func readAllPaho(b []byte) ([]string, error) {
	r := bytes.NewReader(b)
	var out []string
	for {
		p, err := packets.ReadPacket(r)
		if err != nil {
			return out, err
		}
		if pp, ok := p.(*packets.PublishPacket); ok {
			if pp.Qos == 3 {
				return out, errQoS3
			}
			id := pp.MessageID
			if pp.Qos == 0 {
				id = 0
			}
			out = append(out, fmt.Sprintf("PUBLISH %d %d %q %q", pp.Qos, id, pp.TopicName, pp.Payload))
		} else {
			out = append(out, p.String())
		}
	}
}

var errQoS3 = errors.New("QoS 3")

// TestPacketReader: a stream of the packets a broker sends reads back packet for packet as paho
// decodes it (PUBLISH in place, of every QoS, empty and large payloads, one past the read buffer),
// and a connection that ends inside a packet is io.ErrUnexpectedEOF.
func TestPacketReader(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), packetReadBuffer/16+100) // larger than the buffer
	suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
	suback.MessageID, suback.ReturnCodes = 7, []byte{1, 0x80}
	stream := encode(t,
		packets.NewControlPacket(packets.Connack),
		suback,
		publishPacket("plant/a/s-1/telemetry", []byte(`{"v":1}`), 1, 1),
		publishPacket("t", nil, 0, 0),
		publishPacket("big", big, 1, 65535),
		packets.NewControlPacket(packets.Pingresp),
		publishPacket("", []byte{0, 0xff}, 1, 2),
		publishPacket("after/big", []byte("x"), 0, 0),
	)
	got, err := readAll(stream)
	want, werr := readAllPaho(stream)
	if !errors.Is(err, io.EOF) || !errors.Is(werr, io.EOF) {
		t.Fatalf("stream ended with %v (paho: %v), want EOF", err, werr)
	}
	if len(got) != 8 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %d packets:\n%v\npaho read:\n%v", len(got), got, want)
	}
	last := len(encode(t, publishPacket("after/big", []byte("x"), 0, 0)))
	for cut := 1; cut < last; cut++ { // inside the last packet
		_, err := readAll(stream[:len(stream)-cut])
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream cut %d bytes short: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

// TestPacketReaderMalformed: what no broker may send is an error naming the fault, never a packet.
func TestPacketReaderMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"QoS 3", []byte{0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01}},
		{"no topic length", []byte{0x30, 0x01, 0x00}},
		{"topic longer than the packet", []byte{0x30, 0x04, 0x00, 0x05, 'a', 'b'}},
		{"no packet identifier", []byte{0x32, 0x03, 0x00, 0x01, 't'}},
		{"remaining length of 5 bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"unknown packet type", []byte{0x00, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.b)
			if len(got) != 0 || !errors.Is(err, errMalformed) {
				t.Fatalf("read %v, %v; want no packet and errMalformed", got, err)
			}
		})
	}
}

// FuzzPacketReader: on any bytes, packetReader returns what paho.mqtt.golang's ReadPacket decodes,
// packet for packet, up to the first packet either refuses (or a QoS 3 PUBLISH, which paho takes and
// packetReader refuses); it never panics, and whatever it reads as a PUBLISH, paho reads alike.
func FuzzPacketReader(f *testing.F) {
	suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
	suback.MessageID, suback.ReturnCodes = 1, []byte{1}
	f.Add(encode(f, publishPacket("a/b", []byte("payload"), 1, 9), publishPacket("c", nil, 0, 0)))
	f.Add(encode(f, packets.NewControlPacket(packets.Connack), suback, packets.NewControlPacket(packets.Pingresp)))
	f.Add(encode(f, publishPacket("", []byte{0xff}, 2, 1)))
	f.Add([]byte{0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01})
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readAll(b)
		want, werr := readAllPaho(b)
		n := min(len(got), len(want))
		if fmt.Sprint(got[:n]) != fmt.Sprint(want[:n]) {
			t.Fatalf("packetReader read\n%v\npaho read\n%v", got, want)
		}
		if len(got) > len(want) {
			t.Fatalf("packetReader read %v where paho stopped (%v) after %v", got[n:], werr, want)
		}
		if len(want) > len(got) && !errors.Is(err, errMalformed) {
			t.Fatalf("packetReader stopped with %v after %v where paho read on: %v", err, got, want[n:])
		}
	})
}

// BenchmarkPacketRead reads QoS 1 PUBLISH packets (a 180-byte payload, the bench's message size) from
// a buffered stream: packetReader against paho.mqtt.golang's ReadPacket over the same bufio.Reader.
func BenchmarkPacketRead(b *testing.B) {
	const n = 1000
	var ps []packets.ControlPacket
	for i := range n {
		ps = append(ps, publishPacket(fmt.Sprintf("plant/a/sensor-%05d/telemetry", i), bytes.Repeat([]byte("x"), 180), 1, uint16(i+1)))
	}
	stream := encode(b, ps...)
	b.Run("packetReader", func(b *testing.B) {
		b.ReportAllocs()
		var pub publish
		for b.Loop() {
			r := newPacketReader(bytes.NewReader(stream))
			for range n {
				if _, err := r.next(&pub); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
	})
	b.Run("paho", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := bufio.NewReaderSize(bytes.NewReader(stream), packetReadBuffer)
			for range n {
				if _, err := packets.ReadPacket(r); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
	})
}
