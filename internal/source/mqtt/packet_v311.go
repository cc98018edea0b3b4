package mqtt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// packetReader reads the MQTT 3.1.1 packets a broker sends. A PUBLISH, nearly every packet, is parsed
// in place from the read buffer (MQTT 3.1.1 section 3.3): its payload is not copied, since the session
// copies it into the envelope before the next read. Every other packet is decoded by
// paho.mqtt.golang's packets package. packets.ReadPacket made 7 allocations and 2 copies of each
// PUBLISH and was 8.8% of the sluice process's CPU at QoS 1 through Mosquitto (perf, go run ./bench
// -only broker -brokers mosquitto).
type packetReader struct {
	br      *bufio.Reader
	discard int    // bytes of the last packet still in br, skipped by the next read
	big     []byte // the body of a packet larger than br's buffer
}

// packetReadBuffer is the read buffer: PUBLISH packets up to this size are parsed in place.
const packetReadBuffer = 64 << 10

func newPacketReader(r io.Reader) *packetReader {
	return &packetReader{br: bufio.NewReaderSize(r, packetReadBuffer)}
}

// publish is a PUBLISH packet as packetReader parsed it. payload is valid until the next read.
type publish struct {
	topic   string
	payload []byte
	qos     byte
	id      uint16 // packet identifier (QoS 1 and 2)
}

// errMalformed wraps what makes a packet unreadable.
var errMalformed = errors.New("malformed MQTT packet")

// next reads one packet. For a PUBLISH it fills pub and returns (nil, nil); for any other packet it
// returns the packet, decoded by paho.mqtt.golang.
func (r *packetReader) next(pub *publish) (packets.ControlPacket, error) {
	if r.discard > 0 {
		if _, err := r.br.Discard(r.discard); err != nil {
			return nil, err
		}
		r.discard = 0
	}
	first, err := r.br.ReadByte()
	if err != nil {
		return nil, err
	}
	n, err := r.remainingLength()
	if err != nil {
		return nil, err
	}
	var body []byte
	if n <= r.br.Size() {
		if body, err = r.br.Peek(n); err != nil {
			return nil, noEOF(err)
		}
		r.discard = n
	} else {
		if cap(r.big) < n {
			r.big = make([]byte, n)
		}
		body = r.big[:n]
		if _, err := io.ReadFull(r.br, body); err != nil {
			return nil, noEOF(err)
		}
	}
	if first>>4 == packets.Publish {
		return nil, parsePublish(first, body, pub)
	}
	cp, err := packets.NewControlPacketWithHeader(packets.FixedHeader{
		MessageType: first >> 4, Dup: first&0x08 != 0, Qos: (first >> 1) & 0x03, Retain: first&0x01 != 0, RemainingLength: n,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if err := cp.Unpack(bytes.NewReader(body)); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errMalformed, cp.String(), err)
	}
	return cp, nil
}

// remainingLength reads the fixed header's Remaining Length: 1 to 4 bytes, 7 bits each.
func (r *packetReader) remainingLength() (int, error) {
	n := 0
	for i := range 4 {
		b, err := r.br.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		n |= int(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: remaining length longer than 4 bytes", errMalformed)
}

// parsePublish parses a PUBLISH body: topic name (2-byte length, then the bytes), the packet
// identifier when QoS > 0, and the payload (the rest).
func parsePublish(first byte, body []byte, pub *publish) error {
	qos := (first >> 1) & 0x03
	if qos == 3 {
		return fmt.Errorf("%w: PUBLISH with QoS 3", errMalformed)
	}
	if len(body) < 2 {
		return fmt.Errorf("%w: PUBLISH of %d bytes has no topic length", errMalformed, len(body))
	}
	end := 2 + (int(body[0])<<8 | int(body[1]))
	if qos > 0 {
		end += 2
	}
	if end > len(body) {
		return fmt.Errorf("%w: PUBLISH of %d bytes is shorter than its topic and packet identifier", errMalformed, len(body))
	}
	topicEnd := end
	if qos > 0 {
		topicEnd -= 2
		pub.id = uint16(body[topicEnd])<<8 | uint16(body[topicEnd+1])
	} else {
		pub.id = 0
	}
	pub.topic = string(body[2:topicEnd])
	pub.payload = body[end:]
	pub.qos = qos
	return nil
}

// noEOF reports a connection that ends inside a packet as io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
