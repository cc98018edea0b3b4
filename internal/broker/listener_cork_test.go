package broker

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
)

// recordConn is a net.Conn that records each Write it is given, and fails them once failing is set.
type recordConn struct {
	net.Conn
	mu      sync.Mutex
	writes  [][]byte
	failing bool
	closed  bool
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing {
		return 0, errors.New("broken pipe")
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *recordConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, w := range c.writes {
		out = append(out, string(w))
	}
	return out
}

// TestCorkConn: writes pass through until cork; between cork and uncork they are gathered, in
// order, into one write; past corkMax they go out anyway; a failed gathered write fails later
// writes and closes the connection.
func TestCorkConn(t *testing.T) {
	rc := &recordConn{}
	c := &corkConn{Conn: rc}
	write := func(s string) {
		t.Helper()
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	write("a")
	c.cork()
	write("b")
	write("c")
	if got := rc.got(); len(got) != 1 {
		t.Fatalf("corked writes went out before uncork: %q", got)
	}
	c.uncork()
	write("d")
	c.cork()
	c.uncork() // nothing gathered: no empty write
	if got, want := rc.got(), []string{"a", "bc", "d"}; !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}

	c.cork()
	big := bytes.Repeat([]byte("x"), corkMax)
	write("y")
	write(string(big))
	if got := rc.got(); len(got) != 4 || len(got[3]) != corkMax+1 || got[3][0] != 'y' {
		t.Fatalf("past corkMax the gathered bytes did not go out at once: %d writes", len(got))
	}
	write("z")
	rc.mu.Lock()
	rc.failing = true
	rc.mu.Unlock()
	c.uncork()
	if _, err := c.Write([]byte("after")); err == nil {
		t.Fatal("a write after a failed flush succeeded")
	}
	rc.mu.Lock()
	closed := rc.closed
	rc.mu.Unlock()
	if !closed {
		t.Fatal("a failed flush did not close the connection")
	}
}
