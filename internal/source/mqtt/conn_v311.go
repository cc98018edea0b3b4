package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// v311Conn is one MQTT 3.1.1 connection. The session loop is sluice's own (see doc.go, "Libraries,
// and what is written here"); the packets are encoded by paho.mqtt.golang's packets package and
// decoded by packetReader (PUBLISH in place, the rest by that package). One reader goroutine reads
// every packet and hands each PUBLISH to the session in arrival order, on its own goroutine: no
// channel and no other goroutine between the socket and the log. A pinger goroutine sends PINGREQ
// every keep-alive and drops the connection when no PINGRESP came back within pingTimeout. Writes
// (CONNECT, SUBSCRIBE, PINGREQ, DISCONNECT, and the acker's PUBACKs) are one Write each on the
// netbuf connection, which keeps them whole.
type v311Conn struct {
	nc        net.Conn
	pr        *packetReader // read by the reader goroutine only
	ss        *session
	keepAlive time.Duration

	mu      sync.Mutex
	nextID  uint16                                // the last packet identifier used by a SUBSCRIBE
	subacks map[uint16]chan *packets.SubackPacket // SUBSCRIBEs waiting for their SUBACK

	pong      chan struct{} // cap 1: a PINGRESP arrived
	closed    chan struct{} // closed by disconnect: stop the pinger
	closeOnce sync.Once
	done      sync.WaitGroup // the reader and the pinger
}

// errPingTimeout: the broker did not answer a PINGREQ in time.
var errPingTimeout = errors.New("no PINGRESP from the broker within the ping timeout")

func (s *Source) openV311(ctx context.Context, ss *session) (conn, error) {
	nc, err := s.dial(ctx, ss)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, ss.closeConn) // cancelling ctx fails the CONNACK read at once
	defer stop()
	connected := false
	defer func() {
		if !connected {
			nc.Close()
		}
	}()
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4 // 3.1.1 exactly, no fallback to 3.1
	cp.ClientIdentifier = s.cfg.ClientID
	cp.CleanSession = false
	cp.Keepalive = uint16(s.cfg.KeepAlive / time.Second)
	if s.cfg.Username != "" {
		cp.UsernameFlag, cp.Username = true, s.cfg.Username
		if s.cfg.Password != "" {
			cp.PasswordFlag, cp.Password = true, []byte(s.cfg.Password)
		}
	}
	if err := writePacket(nc, cp); err != nil {
		return nil, fmt.Errorf("CONNECT: %w", err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	pr := newPacketReader(nc)
	var pub publish
	p, err := pr.next(&pub)
	if err == nil && p == nil {
		err = errors.New("the broker sent PUBLISH before CONNACK")
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("no CONNACK: %w", err)
	}
	ca, ok := p.(*packets.ConnackPacket)
	if !ok {
		return nil, fmt.Errorf("the broker answered CONNECT with %s, not CONNACK", p.String())
	}
	if ca.ReturnCode != packets.Accepted {
		return nil, fmt.Errorf("broker refused the connection: return code %d (%s)", ca.ReturnCode, returnCodeText(ca.ReturnCode))
	}
	_ = nc.SetReadDeadline(time.Time{})
	// Redelivered messages may follow the CONNACK at once, before any SUBSCRIBE: the reader takes them
	// from here on.
	ss.setAcker(&pubackWriter{w: nc})
	v := &v311Conn{nc: nc, pr: pr, ss: ss, keepAlive: s.cfg.KeepAlive, subacks: map[uint16]chan *packets.SubackPacket{},
		pong: make(chan struct{}, 1), closed: make(chan struct{})}
	v.done.Go(v.read)
	v.done.Go(func() { v.ping(pingTimeout(s.cfg.KeepAlive)) })
	connected = true
	return v, nil
}

// returnCodeText names a refusing CONNACK return code (MQTT 3.1.1 section 3.2.2.3).
func returnCodeText(code byte) string {
	switch code {
	case 1:
		return "unacceptable protocol version"
	case 2:
		return "client identifier rejected"
	case 3:
		return "server unavailable"
	case 4:
		return "bad user name or password"
	case 5:
		return "not authorized"
	}
	return "not a 3.1.1 return code"
}

// writePacket encodes p and writes it with one Write (packets' Write makes several per packet).
func writePacket(nc net.Conn, p packets.ControlPacket) error {
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		return err
	}
	_, err := nc.Write(b.Bytes())
	return err
}

// read hands every PUBLISH to the session until the connection fails, then reports the loss.
func (v *v311Conn) read() {
	var pub publish
	for {
		p, err := v.pr.next(&pub)
		if err != nil {
			v.ss.lose(err)
			_ = v.nc.Close() // a malformed packet: the connection cannot be read further
			return
		}
		switch p := p.(type) {
		case nil: // a PUBLISH, in pub
			v.ss.handle(pub.topic, pub.payload, pub.qos, pub.id)
		case *packets.SubackPacket:
			v.mu.Lock()
			ch := v.subacks[p.MessageID]
			delete(v.subacks, p.MessageID)
			v.mu.Unlock()
			if ch != nil {
				ch <- p
			}
		case *packets.PingrespPacket:
			select {
			case v.pong <- struct{}{}:
			default:
			}
		case *packets.PubrelPacket:
			// Only for QoS 2, which sluice never subscribes at: a broker sending it breaks the protocol.
			v.ss.lose(fmt.Errorf("the broker sent %s, which a QoS 0/1 subscriber never gets", p.String()))
			_ = v.nc.Close()
			return
		default:
			// UNSUBACK, PUBACK and the like answer packets this client never sends: ignored.
		}
	}
}

// ping sends PINGREQ every keep-alive and drops the connection when no PINGRESP comes back within
// timeout.
func (v *v311Conn) ping(timeout time.Duration) {
	if v.keepAlive <= 0 {
		return
	}
	t := time.NewTicker(v.keepAlive)
	defer t.Stop()
	for {
		select {
		case <-v.closed:
			return
		case <-v.ss.down:
			return
		case <-t.C:
		}
		select { // a PINGRESP left over from an earlier ping does not count
		case <-v.pong:
		default:
		}
		if _, err := v.nc.Write([]byte{packets.Pingreq << 4, 0}); err != nil {
			return // the reader reports the loss
		}
		wait := time.NewTimer(timeout)
		select {
		case <-v.pong:
			wait.Stop()
		case <-v.closed:
			wait.Stop()
			return
		case <-v.ss.down:
			wait.Stop()
			return
		case <-wait.C:
			v.ss.lose(errPingTimeout)
			_ = v.nc.Close()
			return
		}
	}
}

// pingTimeout is how long to wait for a PINGRESP: half the keep-alive, within 1s-10s.
func pingTimeout(keepAlive time.Duration) time.Duration {
	return min(max(keepAlive/2, time.Second), 10*time.Second)
}

func (v *v311Conn) subscribe(ctx context.Context, filters []string, qos byte) error {
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.Topics = filters
	sp.Qoss = make([]byte, len(filters))
	for i := range sp.Qoss {
		sp.Qoss[i] = qos
	}
	ch := make(chan *packets.SubackPacket, 1)
	v.mu.Lock()
	v.nextID++ // a repeated SUBSCRIBE (errSubscribeRetry) takes a new identifier
	if v.nextID == 0 {
		v.nextID = 1
	}
	sp.MessageID = v.nextID
	v.subacks[sp.MessageID] = ch
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.subacks, sp.MessageID)
		v.mu.Unlock()
	}()
	if err := writePacket(v.nc, sp); err != nil {
		return fmt.Errorf("SUBSCRIBE: %w", err)
	}
	var sa *packets.SubackPacket
	select {
	case sa = <-ch:
	case <-ctx.Done():
		return fmt.Errorf("no SUBACK: %w", ctx.Err())
	case <-v.ss.down:
		down, _ := v.ss.errs()
		return fmt.Errorf("no SUBACK: %w", down)
	}
	if len(sa.ReturnCodes) != len(filters) {
		return fmt.Errorf("SUBACK has %d return codes for %d filters", len(sa.ReturnCodes), len(filters))
	}
	for i, granted := range sa.ReturnCodes {
		if granted == 0x80 {
			// 3.1.1 has one failure code: not authorised, or mochi's identifier clash (errSubscribeRetry).
			return fmt.Errorf("%w: the broker refused the subscription to %q (not authorised?)", errSubscribeRetry, filters[i])
		}
	}
	return nil
}

func (v *v311Conn) disconnect() {
	// DISCONNECT goes behind the PUBACKs the acker wrote before (the caller has waited for it);
	// closing the netbuf connection flushes both, waiting at most its CloseFlush. 3.1.1 has no session
	// expiry on DISCONNECT: the session stays. On a lost connection the write fails at once.
	v.closeOnce.Do(func() {
		close(v.closed)
		_, _ = v.nc.Write([]byte{packets.Disconnect << 4, 0})
		_ = v.nc.Close()
	})
	v.done.Wait()
}
