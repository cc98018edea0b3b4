package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// connectTimeout bounds how long an accepted connection may take to complete its TLS handshake and
// send CONNECT; mochi replaces the deadline with the client's keepalive once connected.
const connectTimeout = 10 * time.Second

// trackedListener accepts connections for mochi and remembers them until they close, so that closing
// the listener closes every connection it accepted.
//
// mochi's Server.Close waits for every connection's goroutine but only disconnects clients that have
// completed CONNECT: a connection that is still in its TLS handshake or has not sent CONNECT would hold
// Close forever (and one accepted while the listener closes is never closed). mochi closes a listener
// after disconnecting its clients, so closing what remains here is what lets Close finish.
type trackedListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newTrackedListener(ln net.Listener) *trackedListener {
	return &trackedListener{Listener: ln, conns: map[*trackedConn]struct{}{}}
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(connectTimeout))
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// Close closes the listener and every connection it accepted that is still open.
func (l *trackedListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[*trackedConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

// open returns how many accepted connections are still open.
func (l *trackedListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

type trackedConn struct {
	net.Conn
	l    *trackedListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// AddrInUseError is Start's error when a listener's address is taken. Its message says how to use the
// broker already there or move sluice's.
type AddrInUseError struct {
	Key  string // the setting: "listen", "tls.listen" or "websocket_listen"
	Addr string
	Err  error // the bind error (errors.Is(err, syscall.EADDRINUSE))
}

func (e *AddrInUseError) Error() string {
	host, port, _ := net.SplitHostPort(e.Addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	hp := net.JoinHostPort(host, port)
	next := hp
	if n, err := strconv.Atoi(port); err == nil {
		if n == 65535 {
			n -= 2
		}
		next = net.JoinHostPort(host, strconv.Itoa(n+1))
	}
	switch e.Key {
	case "listen":
		return fmt.Sprintf("embedded MQTT broker: %s is already in use (another broker, e.g. Mosquitto, may be running there). "+
			"Use it instead with --broker mqtt://%s, or move the embedded broker with --mqtt-listen %s", e.Addr, hp, next)
	case "tls.listen":
		return fmt.Sprintf("embedded MQTT broker: TLS address %s is already in use. Move it with broker.tls.listen "+
			"(env SLUICE_BROKER_TLS_LISTEN), e.g. %s, or set it to \"\" to disable TLS", e.Addr, next)
	default:
		return fmt.Sprintf("embedded MQTT broker: websocket address %s is already in use. Move it with broker.websocket_listen "+
			"(env SLUICE_BROKER_WEBSOCKET_LISTEN), e.g. %s, or set it to \"\" to disable websockets", e.Addr, next)
	}
}

func (e *AddrInUseError) Unwrap() error { return e.Err }

// listen binds addr for the listener configured at key, turning "address in use" into AddrInUseError.
func listen(key, addr string) (*trackedListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return newTrackedListener(ln), nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, &AddrInUseError{Key: key, Addr: addr, Err: err}
	}
	return nil, fmt.Errorf("embedded MQTT broker: listen on %s (broker.%s): %w", addr, key, err)
}
