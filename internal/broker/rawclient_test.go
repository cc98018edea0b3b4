package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// raw3 is a bare MQTT 3.1.1 client: it writes packets and reads exactly what the broker sends, with no
// library deciding what a lost connection means. Tests use it to see every byte (or its absence), and
// benchmarks to publish as fast as the broker acknowledges.
type raw3 struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	buf  bytes.Buffer
}

// dialRaw3 connects and returns the client and CONNACK's session-present flag.
func dialRaw3(t testing.TB, addr, clientID string, clean bool) (*raw3, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &raw3{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10)}
	t.Cleanup(func() { conn.Close() })
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Clean: clean, Keepalive: 30,
		},
	}
	c.buf.Reset()
	if err := pk.ConnectEncode(&c.buf); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(c.buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	typ, body, err := c.read(10 * time.Second)
	if err != nil || typ != packets.Connack || len(body) != 2 || body[1] != 0 {
		t.Fatalf("CONNACK: type %d body %v err %v", typ, body, err)
	}
	return c, body[0]&1 == 1
}

// writePublish buffers a PUBLISH; flush sends what is buffered.
func (c *raw3) writePublish(id uint16, topic string, payload []byte, qos byte, dup bool) error {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: qos, Dup: dup},
		ProtocolVersion: 4, PacketID: id, TopicName: topic, Payload: payload,
	}
	c.buf.Reset()
	if err := pk.PublishEncode(&c.buf); err != nil {
		return err
	}
	_, err := c.w.Write(c.buf.Bytes())
	return err
}

func (c *raw3) flush() error { return c.w.Flush() }

// publishSeq sends QoS 1 PUBLISHes with packet ids from to last on topic, each payload its id in
// decimal, in one flush.
func (c *raw3) publishSeq(t testing.TB, topic string, from, last int) {
	t.Helper()
	for i := from; i <= last; i++ {
		if err := c.writePublish(uint16(i), topic, []byte(fmt.Sprint(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
}

// expectPubacks reads PUBACKs for packet ids from to last, in that order.
func (c *raw3) expectPubacks(t testing.TB, from, last int) {
	t.Helper()
	for i := from; i <= last; i++ {
		if id, err := c.readPuback(10 * time.Second); err != nil || id != uint16(i) {
			t.Fatalf("PUBACK %d: id %d err %v", i, id, err)
		}
	}
}

// read reads one packet: its type and body (after the fixed header).
func (c *raw3) read(timeout time.Duration) (byte, []byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(c.r)
	if err != nil {
		return 0, nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, err
	}
	return h >> 4, body, nil
}

// readPuback reads a 3.1.1 PUBACK and returns its packet id.
func (c *raw3) readPuback(timeout time.Duration) (uint16, error) {
	typ, body, err := c.read(timeout)
	if err != nil {
		return 0, err
	}
	if typ != packets.Puback || len(body) != 2 {
		return 0, fmt.Errorf("got packet type %d (%v), want PUBACK", typ, body)
	}
	return binary.BigEndian.Uint16(body), nil
}

// subscribe subscribes to filter at qos and reads the SUBACK, failing unless it grants qos.
func (c *raw3) subscribe(t testing.TB, id uint16, filter string, qos byte) {
	t.Helper()
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
		ProtocolVersion: 4, PacketID: id,
		Filters: packets.Subscriptions{{Filter: filter, Qos: qos}},
	}
	c.buf.Reset()
	if err := pk.SubscribeEncode(&c.buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.Write(c.buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	typ, body, err := c.read(10 * time.Second)
	if err != nil || typ != packets.Suback || len(body) != 3 || body[2] != qos {
		t.Fatalf("SUBACK: type %d body %v err %v", typ, body, err)
	}
}

// writePuback buffers a PUBACK for id.
func (c *raw3) writePuback(id uint16) error {
	_, err := c.w.Write([]byte{packets.Puback << 4, 2, byte(id >> 8), byte(id)})
	return err
}
