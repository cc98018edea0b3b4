package simulate

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

// pair returns a bufferedConn dialled to a listener on 127.0.0.1:0 and the server's end.
func pair(t *testing.T) (*bufferedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	c := newBufferedConn(nc)
	t.Cleanup(func() { c.Close(); server.Close() })
	return c, server
}

func TestBufferedConnOrderAndClose(t *testing.T) {
	c, server := pair(t)
	var want bytes.Buffer
	for i := range 10000 {
		p := []byte{byte(i), byte(i >> 8), 0xab}
		want.Write(p)
		if n, err := c.Write(p); n != 3 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(server); got <- b }()
	if err := c.Close(); err != nil { // flushes, then closes: the server sees EOF after every byte
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("server read %d bytes, want the %d written, in order", len(b), want.Len())
	}
	if _, err := c.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
}

func TestBufferedConnRead(t *testing.T) {
	c, server := pair(t)
	if _, err := server.Write([]byte{0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x02}); err != nil { // two PUBACKs
		t.Fatal(err)
	}
	b := make([]byte, 8)
	if _, err := io.ReadFull(c, b); err != nil || b[3] != 1 || b[7] != 2 {
		t.Fatalf("read %v, %v", b, err)
	}
}

// A peer that stops reading makes Write wait once maxPending bytes are buffered; once it reads,
// everything arrives.
func TestBufferedConnBackpressure(t *testing.T) {
	c, server := pair(t)
	const total = 32 << 20
	var accepted atomic.Int64
	done := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte{7}, 1024)
		for accepted.Load() < total {
			if _, err := c.Write(chunk); err != nil {
				done <- err
				return
			}
			accepted.Add(int64(len(chunk)))
		}
		done <- nil
	}()
	var last int64 = -1
	testkit.Eventually(t, 10*time.Second, func() bool { // the writer stalls
		n := accepted.Load()
		stalled := n == last
		last = n
		time.Sleep(50 * time.Millisecond)
		return stalled
	}, "the writer never stalled")
	c.mu.Lock()
	pending := len(c.pending)
	c.mu.Unlock()
	if last >= total || pending > maxPending {
		t.Fatalf("accepted %d of %d bytes with %d pending; want a stall with at most %d pending", last, total, pending, maxPending)
	}
	n, err := io.CopyN(io.Discard, server, total)
	if err != nil || n != total {
		t.Fatalf("server read %d of %d: %v", n, total, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBufferedConnWriteError(t *testing.T) {
	c, server := pair(t)
	server.(*net.TCPConn).SetLinger(0)
	server.Close() // reset
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, err := c.Write(make([]byte, 1024))
		return err != nil
	}, "writes to a reset connection never failed")
	b := make([]byte, 1)
	if _, err := c.Read(b); err == nil {
		t.Fatal("read from a reset connection succeeded")
	}
}
