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
		ss.handle(m.Topic(), m.Payload(), m.Qos(), m)
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { ss.lose(err) })
	o.SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return s.dial(ctx, ss) })

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

func (v *v311Conn) disconnect(graceful bool) {
	// Disconnect sends DISCONNECT after any PUBACK already handed to paho (one goroutine forwards both,
	// in order), waits for it to be written up to the quiesce time, then stops paho's goroutines.
	// 3.1.1 has no session expiry on DISCONNECT: the session stays. On a lost connection it returns at
	// once. graceful changes nothing here: acks are never held back by paho.mqtt.golang.
	v.c.Disconnect(uint(disconnectQuiesce / time.Millisecond))
}
