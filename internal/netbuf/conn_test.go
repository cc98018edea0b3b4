package netbuf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-project/sluice/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a Conn dialled to a listener on 127.0.0.1:0 and the server's end of the connection.
func pair(t testing.TB) (*Conn, net.Conn) {
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
	if server == nil {
		t.Fatal("accept failed")
	}
	c := New(nc)
	t.Cleanup(func() { c.Close(); server.Close() })
	return c, server
}

func TestOrderAndClose(t *testing.T) {
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
	if n, err := c.Write([]byte{1}); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %d, %v; want 0, net.ErrClosed", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v, want the first one's nil", err)
	}
}

// A lone write goes out without a Close, another write or a timer: the peer reads it while the
// writer waits for the answer, as an MQTT client waits for a CONNACK or a broker for a PUBACK.
func TestLoneWriteFlushedAtOnce(t *testing.T) {
	c, server := pair(t)
	for i := range 50 { // request and answer, one at a time
		ack := []byte{0x40, 0x02, 0x00, byte(i)}
		if _, err := c.Write(ack); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, ack) {
			t.Fatalf("round %d: server read %x, %v; want %x", i, got, err, ack)
		}
		if _, err := server.Write([]byte{0xd0, 0x00}); err != nil { // PINGRESP as the answer
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got[:2]); err != nil || got[0] != 0xd0 {
			t.Fatalf("round %d: client read %x, %v", i, got[:2], err)
		}
	}
}

func TestRead(t *testing.T) {
	c, server := pair(t)
	if _, err := server.Write([]byte{0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x02}); err != nil { // two PUBACKs
		t.Fatal(err)
	}
	b := make([]byte, 8)
	if _, err := io.ReadFull(c, b); err != nil || !bytes.Equal(b, []byte{0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x02}) {
		t.Fatalf("read %x, %v", b, err)
	}
	server.Close()
	if n, err := c.Read(b); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want 0, EOF", n, err)
	}
}

// Writes from several goroutines arrive whole: one Write's bytes are never split by another's, and
// each goroutine's writes stay in its order.
func TestConcurrentWritesStayWhole(t *testing.T) {
	c, server := pair(t)
	const writers, per, size = 8, 2000, 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rec := make([]byte, size)
			for i := range per {
				rec[0] = byte(w)
				binary.BigEndian.PutUint32(rec[1:], uint32(i))
				for j := 5; j < size; j++ {
					rec[j] = byte(w)
				}
				if _, err := c.Write(rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(server); got <- b }()
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if len(b) != writers*per*size {
		t.Fatalf("server read %d bytes, want %d", len(b), writers*per*size)
	}
	next := make([]uint32, writers)
	for off := 0; off < len(b); off += size {
		rec := b[off : off+size]
		w := rec[0]
		if int(w) >= writers || !bytes.Equal(rec[5:], bytes.Repeat([]byte{w}, size-5)) {
			t.Fatalf("record at %d is mixed: %x", off, rec)
		}
		if i := binary.BigEndian.Uint32(rec[1:]); i != next[w] {
			t.Fatalf("writer %d: record %d arrived where %d was due", w, i, next[w])
		}
		next[w]++
	}
}

// A peer that stops reading makes Write wait once MaxPending bytes are pending; once it reads,
// everything arrives.
func TestBackpressure(t *testing.T) {
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
	pending, waiting := len(c.pending), c.roomWait
	c.mu.Unlock()
	if last >= total || pending > MaxPending || waiting != 1 {
		t.Fatalf("accepted %d of %d bytes with %d pending and %d writers waiting; want a stall with at most %d pending and 1 waiting",
			last, total, pending, waiting, MaxPending)
	}
	n, err := io.CopyN(io.Discard, server, total)
	if err != nil || n != total {
		t.Fatalf("server read %d of %d: %v", n, total, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A write that fails (the peer reset the connection) is returned by the next Writes, and a Read
// blocked meanwhile returns it too rather than "use of closed network connection".
func TestWriteError(t *testing.T) {
	c, server := pair(t)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	server.(*net.TCPConn).SetLinger(0)
	server.Close() // reset
	var werr error
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, werr = c.Write(make([]byte, 1024))
		return werr != nil
	}, "writes to a reset connection never failed")
	if errors.Is(werr, net.ErrClosed) {
		t.Fatalf("Write = %v, want the network error, not net.ErrClosed", werr)
	}
	if _, err := c.Write([]byte{1}); err != werr {
		t.Fatalf("second Write after the error = %v, want the same %v", err, werr)
	}
	if err := <-readErr; err == nil || errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read returned %v, want the connection's error", err)
	}
	if err := c.Close(); !errors.Is(err, ErrUnflushed) || !errors.Is(err, werr) {
		t.Fatalf("Close = %v, want ErrUnflushed with %v", err, werr)
	}
}

// Close waits for a peer that does not read at most CloseFlush, and then reports the lost bytes.
func TestCloseBoundedWhenPeerStalls(t *testing.T) {
	c, _ := pair(t)
	chunk := bytes.Repeat([]byte{1}, 64<<10)
	wrote := 0
	for wrote < 64<<20 { // fill the socket buffers and the pending buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Write(chunk)
		}()
		select {
		case <-done:
			wrote += len(chunk)
			continue
		case <-time.After(200 * time.Millisecond):
		}
		// Write blocks: the peer's buffers are full. Close must unblock it and finish in time.
		start := time.Now()
		err := c.Close()
		<-done
		if took := time.Since(start); took > CloseFlush+2*time.Second {
			t.Fatalf("Close took %v, want about %v", took, CloseFlush)
		}
		if !errors.Is(err, ErrUnflushed) {
			t.Fatalf("Close = %v, want ErrUnflushed", err)
		}
		return
	}
	t.Fatalf("wrote %d bytes to a peer that does not read without blocking", wrote)
}
