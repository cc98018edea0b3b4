package simulate

import (
	"bufio"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// paho.mqtt.golang writes every packet with its own write(2) and reads every packet with three or
// more read(2)s (a byte for the type, a byte per length digit, then the body). On loopback at tens of
// thousands of messages a second those system calls are most of the publisher's cost, so for plain
// TCP brokers the simulator hands paho a connection that buffers reads and coalesces writes:
//
//   - Read goes through a bufio.Reader (paho reads from one goroutine only).
//   - Write appends to a buffer and returns; a flusher goroutine writes whatever has accumulated
//     while its previous write(2) was in progress. The first packet after a pause goes out at once,
//     so nothing waits for a timer; under load packets leave in batches. At most maxPending bytes
//     wait: beyond that Write blocks (backpressure). A write error is returned by the next Write,
//     and the read side fails too, which is how paho notices a lost connection.
//   - Close flushes what is buffered (paho writes DISCONNECT, then closes), for at most a second.
//
// TLS and websocket URLs keep paho's own dialer and connection.

const (
	maxPending  = 256 << 10
	readBuffer  = 32 << 10
	closeFlush  = time.Second
	dialTimeout = 10 * time.Second
)

// dialBuffered is a paho OpenConnectionFunc for mqtt:// and tcp:// brokers.
func dialBuffered(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.ConnectTimeout}
	if opts.Dialer != nil {
		d = *opts.Dialer
		d.Timeout = opts.ConnectTimeout
	}
	if d.Timeout == 0 {
		d.Timeout = dialTimeout
	}
	nc, err := d.Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	return newBufferedConn(nc), nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu       sync.Mutex
	wake     *sync.Cond // the flusher waits for data or closing; Write waits for room
	pending  []byte
	spare    []byte
	err      error // the first write error; every later Write returns it
	closing  bool
	flushed  chan struct{} // closed when the flusher has exited
	closeErr error
	once     sync.Once
}

func newBufferedConn(nc net.Conn) *bufferedConn {
	c := &bufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, readBuffer), flushed: make(chan struct{})}
	c.wake = sync.NewCond(&c.mu)
	go c.flush()
	return c
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.pending) > 0 && len(c.pending)+len(p) > maxPending {
		c.wake.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, p...)
	c.wake.Broadcast()
	return len(p), nil
}

// flush writes what Write buffered, until Close.
func (c *bufferedConn) flush() {
	defer close(c.flushed)
	c.mu.Lock()
	for {
		for len(c.pending) == 0 && !c.closing && c.err == nil {
			c.wake.Wait()
		}
		if c.err != nil || len(c.pending) == 0 { // closing with nothing left, or broken
			c.mu.Unlock()
			return
		}
		out := c.pending
		c.pending, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		c.spare = out[:0]
		if err != nil {
			c.err = err
		}
		c.wake.Broadcast()
	}
}

// Close flushes what is buffered (for at most closeFlush) and closes the connection.
func (c *bufferedConn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.wake.Broadcast()
		c.mu.Unlock()
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
		<-c.flushed
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}
