package mqtt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	v5packets "github.com/eclipse/paho.golang/packets"
	v3packets "github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// wireBroker is the broker side of one MQTT connection, spoken with the client libraries' own packet
// codecs, so a test sees exactly what the source puts on the wire.
type wireBroker struct {
	proto  string
	conn   net.Conn
	r      *bufio.Reader
	onPing func() // called for each PINGREQ read
	silent bool   // PINGREQs are not answered
}

// listenLocal listens on a free port of 127.0.0.1 until the test ends.
func listenLocal(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptWire accepts one connection on ln and answers its CONNECT and SUBSCRIBE.
func acceptWire(t *testing.T, ln net.Listener, proto string) *wireBroker {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	w := &wireBroker{proto: proto, conn: c, r: bufio.NewReader(c)}
	if got := w.next(t); got != "CONNECT" {
		t.Fatalf("first packet %s, want CONNECT", got)
	}
	if proto == Protocol5 {
		w.write(t, &v5packets.Connack{Properties: &v5packets.Properties{}})
	} else {
		w.write(t, v3packets.NewControlPacket(v3packets.Connack))
	}
	kind, id := w.read(t)
	if kind != "SUBSCRIBE" {
		t.Fatalf("second packet %s, want SUBSCRIBE", kind)
	}
	if proto == Protocol5 {
		w.write(t, &v5packets.Suback{PacketID: id, Reasons: []byte{1}, Properties: &v5packets.Properties{}})
	} else {
		sa := v3packets.NewControlPacket(v3packets.Suback).(*v3packets.SubackPacket)
		sa.MessageID, sa.ReturnCodes = id, []byte{1}
		w.write(t, sa)
	}
	return w
}

// write sends one packet (a v3packets.ControlPacket or a v5 packet with WriteTo).
func (w *wireBroker) write(t *testing.T, p any) {
	t.Helper()
	var err error
	switch p := p.(type) {
	case v3packets.ControlPacket:
		err = p.Write(w.conn)
	case io.WriterTo:
		_, err = p.WriteTo(w.conn)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// publish sends a QoS 1 PUBLISH with packet identifier id.
func (w *wireBroker) publish(t *testing.T, id uint16) {
	t.Helper()
	topic, payload := fmt.Sprintf("t/%d", id), fmt.Appendf(nil, `{"id":%d}`, id)
	if w.proto == Protocol5 {
		w.write(t, &v5packets.Publish{QoS: 1, PacketID: id, Topic: topic, Payload: payload, Properties: &v5packets.Properties{}})
		return
	}
	p := v3packets.NewControlPacket(v3packets.Publish).(*v3packets.PublishPacket)
	p.Qos, p.MessageID, p.TopicName, p.Payload = 1, id, topic, payload
	w.write(t, p)
}

// read returns the next packet's type and identifier, skipping PINGREQs (answered unless silent), or
// "EOF", or "timeout" when the connection's read deadline passes.
func (w *wireBroker) read(t *testing.T) (string, uint16) {
	t.Helper()
	for {
		if w.proto == Protocol5 {
			p, err := v5packets.ReadPacket(w.r)
			if kind, done := readEnd(t, err); done {
				return kind, 0
			}
			if p.Type == v5packets.PINGREQ {
				w.pinged(t, v5packets.NewControlPacket(v5packets.PINGRESP))
				continue
			}
			return p.PacketType(), p.PacketID()
		}
		p, err := v3packets.ReadPacket(w.r)
		if kind, done := readEnd(t, err); done {
			return kind, 0
		}
		if _, ok := p.(*v3packets.PingreqPacket); ok {
			w.pinged(t, v3packets.NewControlPacket(v3packets.Pingresp))
			continue
		}
		return packetName(p), p.Details().MessageID
	}
}

func (w *wireBroker) next(t *testing.T) string { k, _ := w.read(t); return k }

// readEnd tells what a read error means: "EOF", "timeout", or a failed test.
func readEnd(t *testing.T, err error) (string, bool) {
	t.Helper()
	var ne net.Error
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, io.EOF):
		return "EOF", true
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout", true
	}
	t.Fatalf("read: %v", err)
	return "", true
}

// pinged answers a PINGREQ with resp, unless silent.
func (w *wireBroker) pinged(t *testing.T, resp any) {
	t.Helper()
	if w.onPing != nil {
		w.onPing()
	}
	if !w.silent {
		w.write(t, resp)
	}
}

// packetName names the MQTT 3.1.1 packets a subscriber sends.
func packetName(p v3packets.ControlPacket) string {
	switch p.(type) {
	case *v3packets.ConnectPacket:
		return "CONNECT"
	case *v3packets.SubscribePacket:
		return "SUBSCRIBE"
	case *v3packets.PubackPacket:
		return "PUBACK"
	case *v3packets.DisconnectPacket:
		return "DISCONNECT"
	default:
		return fmt.Sprintf("%T", p)
	}
}

// TestPubacksOnTheWire checks what the source writes to the broker, per protocol: a PUBACK for every
// message once its append is durable, in arrival order (not packet-identifier order), and on shutdown
// the PUBACKs of the appends still pending go out before DISCONNECT, and then the connection closes.
func TestPubacksOnTheWire(t *testing.T) {
	const n = 300
	ids := make([]uint16, n) // distinct, scrambled identifiers, as a broker reusing freed ones sends them
	for i := range ids {
		ids[i] = uint16(1 + (i*7919)%65000)
	}
	for _, proto := range protocols {
		t.Run("v"+proto, func(t *testing.T) {
			ln := listenLocal(t)
			held := &heldLog{inner: memlog.New()}
			r := startSource(t, testConfig("mqtt://"+ln.Addr().String(), "sluice-wire", proto), held)
			w := acceptWire(t, ln, proto)
			r.waitReady(t)

			// First half: appended, made durable, acknowledged.
			for _, id := range ids[:n/2] {
				w.publish(t, id)
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return held.count() == n/2 }, "%d of %d messages reached the log", held.count(), n/2)
			held.release()
			for i, id := range ids[:n/2] {
				if kind, got := w.read(t); kind != "PUBACK" || got != id {
					t.Fatalf("packet %d: %s %d, want PUBACK %d", i, kind, got, id)
				}
			}

			// Second half: still waiting for the log when the source is stopped. Stopping waits for
			// them, writes their PUBACKs, then DISCONNECT.
			held.hold()
			for _, id := range ids[n/2:] {
				w.publish(t, id)
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return held.count() == n-n/2 }, "%d of %d messages reached the log", held.count(), n-n/2)
			r.cancel()
			go func() {
				// Release once Run is ending (Ready says stopped): the acks are written during shutdown.
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					if errors.Is(r.Ready(), ErrStopped) {
						break
					}
				}
				held.release()
			}()
			for i, id := range ids[n/2:] {
				if kind, got := w.read(t); kind != "PUBACK" || got != id {
					t.Fatalf("packet %d after stop: %s %d, want PUBACK %d", n/2+i, kind, got, id)
				}
			}
			if kind := w.next(t); kind != "DISCONNECT" {
				t.Fatalf("after the PUBACKs: %s, want DISCONNECT", kind)
			}
			if kind := w.next(t); kind != "EOF" {
				t.Fatalf("after DISCONNECT: %s, want the connection closed", kind)
			}
			if err := r.stop(t); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v, want context.Canceled", err)
			}
			if got := r.acked(); got != n {
				t.Fatalf("acked metric %d, want %d", got, n)
			}
			if got := held.inner.Next(); got != n {
				t.Fatalf("log holds %d entries, want %d", got, n)
			}
		})
	}
}

// countingWriter records each Write.
type countingWriter struct{ writes [][]byte }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

// TestPubackWriter: one Write per batch, 4 bytes per QoS 1 message in batch order, nothing for QoS 0,
// and no Write for a batch with nothing to acknowledge.
func TestPubackWriter(t *testing.T) {
	tests := []struct {
		name  string
		batch []pending
		want  [][]byte
	}{
		{"one", []pending{{qos: 1, id: 0x0102}}, [][]byte{{0x40, 0x02, 0x01, 0x02}}},
		{"in batch order, QoS 0 skipped",
			[]pending{{qos: 1, id: 0xfffe}, {qos: 0, id: 0}, {qos: 1, id: 7}, {qos: 1, id: 0x0100}},
			[][]byte{{0x40, 0x02, 0xff, 0xfe, 0x40, 0x02, 0x00, 0x07, 0x40, 0x02, 0x01, 0x00}}},
		{"QoS 0 only", []pending{{qos: 0}, {qos: 0}}, nil},
		{"QoS 2 is not acknowledged", []pending{{qos: 2, id: 9}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w countingWriter
			a := &pubackWriter{w: &w}
			batch := make([]*pending, len(tc.batch))
			for i := range tc.batch {
				batch[i] = &tc.batch[i]
			}
			a.ack(batch)
			if fmt.Sprint(w.writes) != fmt.Sprint(tc.want) {
				t.Fatalf("writes %x, want %x", w.writes, tc.want)
			}
		})
	}
}

// TestKeepAlive, per protocol: the source sends PINGREQ every keep-alive (1s here), and a connection
// whose broker answers them stays up; once the broker stops answering (the connection open, the
// broker silent), the source drops it within the keep-alive and the ping timeout, and connects again.
func TestKeepAlive(t *testing.T) {
	for _, proto := range protocols {
		t.Run("v"+proto, func(t *testing.T) {
			ln := listenLocal(t)
			cfg := testConfig("mqtt://"+ln.Addr().String(), "sluice-keepalive", proto)
			cfg.KeepAlive = time.Second
			r := startSource(t, cfg, memlog.New())
			w := acceptWire(t, ln, proto)
			r.waitReady(t)

			// Answered: three keep-alives pass, every packet is a PINGREQ (read answers them) and
			// the connection stays.
			pings := 0
			w.onPing = func() { pings++ }
			w.conn.SetReadDeadline(time.Now().Add(3500 * time.Millisecond))
			if kind, _ := w.read(t); kind != "timeout" {
				t.Fatalf("while pings are answered: %s, want nothing but PINGREQs", kind)
			}
			if pings < 2 || pings > 4 {
				t.Fatalf("%d PINGREQs in 3.5s at a 1s keep-alive, want 3", pings)
			}
			if got := r.reconnects(reasonConnectionLost); got != 0 {
				t.Fatalf("%d reconnections while pings are answered", got)
			}

			// Unanswered: the source gives up on the connection and dials again.
			w.onPing, w.silent = nil, true
			start := time.Now()
			ln.SetDeadline(time.Now().Add(10 * time.Second))
			again, err := ln.Accept()
			if err != nil {
				t.Fatalf("no new connection after the broker went silent: %v", err)
			}
			again.Close()
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("reconnected %v after the broker went silent, want within keep-alive + ping timeout", took)
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return r.reconnects(reasonConnectionLost) >= 1 }, "the lost connection was not counted")
		})
	}
}
