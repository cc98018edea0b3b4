package netbuf

import (
	"io"
	"net"
	"testing"
)

// BenchmarkWritePuback writes 4-byte packets (an MQTT PUBACK) to a peer that reads everything, with
// the raw connection (one write(2) each) and with Conn (coalesced).
func BenchmarkWritePuback(b *testing.B) {
	ack := []byte{0x40, 0x02, 0x12, 0x34}
	for _, c := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"raw", func(nc net.Conn) net.Conn { return nc }},
		{"netbuf", func(nc net.Conn) net.Conn { return New(nc) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			nb, server := pair(b)
			conn := c.wrap(nb.Conn)
			drained := make(chan struct{})
			go func() { io.Copy(io.Discard, server); close(drained) }()
			b.ReportAllocs()
			b.SetBytes(int64(len(ack)))
			for b.Loop() {
				if _, err := conn.Write(ack); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if wrapped, ok := conn.(*Conn); ok {
				wrapped.Close()
			}
			nb.Close()
			<-drained
		})
	}
}

// BenchmarkReadPacket reads MQTT-like packets the way paho does (a byte for the type, a byte for the
// length, then the body) from the raw connection and through Conn.
func BenchmarkReadPacket(b *testing.B) {
	const body = 160
	pkt := make([]byte, 2+body)
	pkt[0], pkt[1] = 0x30, body
	for _, c := range []struct {
		name string
		wrap func(*Conn) io.Reader
	}{
		{"raw", func(nb *Conn) io.Reader { return nb.Conn }},
		{"netbuf", func(nb *Conn) io.Reader { return nb }},
	} {
		b.Run(c.name, func(b *testing.B) {
			nb, server := pair(b)
			r := c.wrap(nb)
			stop := make(chan struct{})
			go func() {
				burst := make([]byte, 0, 64*len(pkt))
				for range 64 {
					burst = append(burst, pkt...)
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := server.Write(burst); err != nil {
						return
					}
				}
			}()
			hdr, buf := make([]byte, 1), make([]byte, body)
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				for range 2 {
					if _, err := io.ReadFull(r, hdr); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			server.Close()
			nb.Close()
		})
	}
}
