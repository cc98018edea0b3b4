package netbuf

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Sizes and times of every Conn.
const (
	// ReadBuffer is the size of the read buffer: one read(2) takes up to this many bytes.
	ReadBuffer = 32 << 10
	// MaxPending is how many written bytes may wait for the flusher before Write blocks.
	MaxPending = 256 << 10
	// CloseFlush bounds how long Close waits for pending bytes to be written.
	CloseFlush = time.Second
)

// Conn is a net.Conn with buffered reads and coalesced writes; see the package doc for what each call
// means. The embedded connection's other methods (addresses, deadlines) are used as they are.
type Conn struct {
	net.Conn
	r *bufio.Reader

	mu       sync.Mutex
	wake     *sync.Cond // the flusher waits for bytes or closing; Write waits for room
	pending  []byte     // written, not yet handed to the flusher
	spare    []byte     // the buffer the flusher wrote last, reused for pending
	err      error      // the first write error: every later Write returns it
	closing  bool       // Close was called
	idle     bool       // the flusher waits for bytes (Write wakes it)
	roomWait int        // Writes waiting for room (the flusher wakes them)
	flushed  chan struct{}
	closeErr error
	once     sync.Once
}

// New wraps nc and starts its flusher. The caller closes the returned Conn, never nc directly (that
// would lose what is pending).
func New(nc net.Conn) *Conn {
	c := &Conn{Conn: nc, r: bufio.NewReaderSize(nc, ReadBuffer), flushed: make(chan struct{})}
	c.wake = sync.NewCond(&c.mu)
	go c.flush()
	return c
}

// Read reads through the buffer. After a write error it returns that error (the flusher closed the
// connection), so the reader learns why the connection ended.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.err != nil && !c.closing {
			err = c.err
		}
		c.mu.Unlock()
	}
	return n, err
}

// Write copies p into the pending buffer and returns len(p), nil; see the package doc.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.pending) > 0 && len(c.pending)+len(p) > MaxPending {
		c.roomWait++
		c.wake.Wait()
		c.roomWait--
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, p...)
	if c.idle {
		c.idle = false
		c.wake.Broadcast()
	}
	return len(p), nil
}

// flush is the flusher goroutine: it writes what Write buffered until Close, or the first error.
func (c *Conn) flush() {
	defer close(c.flushed)
	c.mu.Lock()
	for {
		for len(c.pending) == 0 && !c.closing && c.err == nil {
			c.idle = true
			c.wake.Wait()
		}
		c.idle = false
		if c.err != nil || len(c.pending) == 0 { // closing with nothing left, or broken
			c.mu.Unlock()
			return
		}
		out := c.pending
		c.pending, c.spare = c.spare[:0], nil
		if c.roomWait > 0 {
			c.wake.Broadcast()
		}
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		c.spare = out[:0]
		if err != nil {
			c.err = err
			c.wake.Broadcast()
			closing := c.closing
			c.mu.Unlock()
			if !closing {
				// The stream may have lost part of a packet: it is unusable. Closing it ends a blocked
				// Read, which then returns err.
				_ = c.Conn.Close()
			}
			return
		}
	}
}

// ErrUnflushed is returned by Close when pending bytes could not be written before the connection
// was closed: the peer did not read them within CloseFlush, or the connection had failed.
var ErrUnflushed = errors.New("netbuf: pending bytes not written before close")

// Close flushes what is pending (waiting at most CloseFlush), closes the connection and waits for
// the flusher. It returns the wrapped connection's Close error, or ErrUnflushed (with the write's
// error) when pending bytes were not written.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.wake.Broadcast()
		c.mu.Unlock()
		// No write deadline: some connections (gorilla/websocket's) do not allow setting one while a
		// write runs. Closing the connection ends a write that does not finish in time.
		t := time.NewTimer(CloseFlush)
		select {
		case <-c.flushed:
			t.Stop()
			c.closeErr = c.Conn.Close()
		case <-t.C:
			c.closeErr = c.Conn.Close()
			<-c.flushed
		}
		c.mu.Lock()
		if c.err != nil {
			c.closeErr = fmt.Errorf("%w: %w", ErrUnflushed, c.err)
		}
		c.mu.Unlock()
	})
	return c.closeErr
}
