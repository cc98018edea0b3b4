package mqtt

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// disconnectQuiesce bounds how long a graceful MQTT 3.1.1 disconnect waits for the DISCONNECT packet
// (and the acknowledgements queued before it) to be written.
const disconnectQuiesce = 2 * time.Second

// v311Conn is one MQTT 3.1.1 connection made with paho.mqtt.golang. Each connection is its own client
// (auto-reconnect off): Run reconnects, so a message's Ack can only ever reach the connection that
// received it (paho drops acks issued after its connection stopped).
type v311Conn struct {
	c paho.Client
}

func (s *Source) openV311(ctx context.Context, ss *session) (conn, error) {
	o := paho.NewClientOptions()
	o.AddBroker(s.url.String()) // only used to name the server: the connection comes from s.dial
	o.SetClientID(s.cfg.ClientID)
	o.SetProtocolVersion(4) // 3.1.1 exactly, no fallback to 3.1
	o.SetCleanSession(false)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetResumeSubs(false)
	o.SetAutoAckDisabled(true)
	o.SetOrderMatters(true) // one delivery goroutine, in arrival order
	o.SetKeepAlive(s.cfg.KeepAlive)
	o.SetPingTimeout(pingTimeout(s.cfg.KeepAlive))
	o.SetConnectTimeout(s.cfg.ConnectTimeout)
	o.SetUsername(s.cfg.Username)
	o.SetPassword(s.cfg.Password)
	// No routes: subscriptions are made without callbacks, so every message (including the redeliveries
	// that arrive right after CONNACK, before any SUBSCRIBE) goes to this one handler, exactly once.
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		ss.handle(m.Topic(), m.Payload(), m.Qos(), m.MessageID())
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { ss.lose(err) })
	o.SetStore(noStore{}) // see noStore
	o.SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
		nc, err := s.dial(ctx, ss)
		if err == nil {
			ss.setAcker(&pubackWriter{w: nc})
		}
		return nc, err
	})

	c := paho.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		ss.closeConn() // fails the CONNACK read at once
		<-tok.Done()
	}
	if err := tok.Error(); err != nil {
		if ct, ok := tok.(*paho.ConnectToken); ok && ct.ReturnCode() != 0 && ct.ReturnCode() != packets.ErrNetworkError {
			return nil, fmt.Errorf("broker refused the connection: return code %d (%w)", ct.ReturnCode(), err)
		}
		return nil, err
	}
	return &v311Conn{c: c}, nil
}

// pingTimeout is how long to wait for a PINGRESP: half the keep-alive, within 1s-10s.
func pingTimeout(keepAlive time.Duration) time.Duration {
	return min(max(keepAlive/2, time.Second), 10*time.Second)
}

func (v *v311Conn) subscribe(ctx context.Context, filters []string, qos byte) error {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = qos
	}
	tok := v.c.SubscribeMultiple(m, nil)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("no SUBACK: %w", ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return err
	}
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	for f, granted := range st.Result() {
		if granted == 0x80 {
			// 3.1.1 has one failure code: not authorised, or mochi's identifier clash (errSubscribeRetry).
			return fmt.Errorf("%w: the broker refused the subscription to %q (not authorised?)", errSubscribeRetry, f)
		}
	}
	return nil
}

func (v *v311Conn) disconnect() {
	// Disconnect sends DISCONNECT, waits for it to be handed to the connection up to the quiesce time,
	// then stops paho's goroutines; closing the connection flushes what it holds, PUBACKs written
	// before (by the session's acker, which the caller has waited for) and then DISCONNECT. 3.1.1 has
	// no session expiry on DISCONNECT: the session stays. On a lost connection it returns at once.
	v.c.Disconnect(uint(disconnectQuiesce / time.Millisecond))
}

// noStore is paho.mqtt.golang's Store for the source's clients: it keeps nothing. paho keeps each
// received QoS 1 PUBLISH in its store until the PUBACK goes through its Ack (which pubackWriter
// replaces), so that a client reconnecting by itself can resume; the source's clients never reconnect
// (a connection is one client, see doc.go), the session lives at the broker, and its own store would
// only cost a formatted key, a map insert and a lock per message.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
