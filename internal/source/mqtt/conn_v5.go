package mqtt

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// v5Conn is one MQTT 5 connection made with paho.golang's paho.Client. Each connection has its own
// client and its own in-memory session state, so an acknowledgement for a connection that is gone can
// never be written to the next one (with autopaho's shared session state it could: paho.golang issue
// #160).
type v5Conn struct {
	c    *paho.Client
	sess v5Session
}

// v5Session is paho.golang's in-memory session state (state.State) with Ack disabled: paho calls it
// as soon as the message handler returns, before the append is durable, and the session's acker
// writes the PUBACKs itself once it is (pubackWriter, one write per batch, on the connection that
// received the messages). A QoS 1 PUBLISH from the broker is not kept in the session state, so Ack is
// all there is to take over. paho.golang's own deferred acknowledgement (EnableManualAcknowledgment)
// was used before; it keeps the messages in a list it scans on every message and every Ack (O(in
// flight): 4% of the source's CPU with 1000 in flight) and sends the PUBACKs from a 2ms ticker.
type v5Session struct{ *state.State }

// Ack does nothing: see v5Session.
func (v5Session) Ack(*packets.Publish) error { return nil }

func (s *Source) openV5(ctx context.Context, ss *session) (conn, error) {
	nc, err := s.dial(ctx, ss)
	if err != nil {
		return nil, err
	}
	// paho writes from several goroutines, some packets with more than one Write: the PUBACKs go
	// through the same lock.
	tc := packets.NewThreadSafeConn(nc)
	ss.setAcker(&pubackWriter{w: tc})
	sess := v5Session{state.NewInMemory()}
	c := paho.NewClient(paho.ClientConfig{
		ClientID: s.cfg.ClientID,
		Conn:     tc,
		Session:  sess,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			p := pr.Packet
			ss.handle(p.Topic, p.Payload, p.QoS, p.PacketID)
			return true, nil
		}},
		OnClientError: ss.lose,
		OnServerDisconnect: func(d *paho.Disconnect) {
			reason := ""
			if d.Properties != nil {
				reason = d.Properties.ReasonString
			}
			ss.lose(fmt.Errorf("the broker disconnected: reason code 0x%02x %s", d.ReasonCode, reason))
		},
		PacketTimeout: s.cfg.ConnectTimeout,
	})
	expiry := uint32(s.cfg.SessionExpiry / time.Second)
	cp := &paho.Connect{
		ClientID:   s.cfg.ClientID,
		KeepAlive:  uint16(s.cfg.KeepAlive / time.Second),
		CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry},
	}
	if s.cfg.MaxInFlight < math.MaxUint16 {
		// 65535 is the protocol's default, so it is not sent (which also keeps mochi-mqtt v2.7.9 off its
		// Receive Maximum code, which can deadlock and lose messages).
		recvMax := uint16(s.cfg.MaxInFlight)
		cp.Properties.ReceiveMaximum = &recvMax
	}
	if s.cfg.Username != "" {
		cp.Username, cp.UsernameFlag = s.cfg.Username, true
		if s.cfg.Password != "" {
			cp.Password, cp.PasswordFlag = []byte(s.cfg.Password), true
		}
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	ca, err := c.Connect(cctx, cp) // closes the connection itself when it fails
	if err != nil {
		_ = sess.Close()
		if ca != nil {
			return nil, fmt.Errorf("broker refused the connection: reason code 0x%02x%s", ca.ReasonCode, connackReason(ca))
		}
		return nil, err
	}
	return &v5Conn{c: c, sess: sess}, nil
}

func (v *v5Conn) subscribe(ctx context.Context, filters []string, qos byte) error {
	sub := &paho.Subscribe{}
	for _, f := range filters {
		// RetainHandling 1: retained messages only for a new subscription, not again on every reconnection.
		sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: qos, RetainHandling: 1})
	}
	sa, err := v.c.Subscribe(ctx, sub)
	if err == nil {
		return nil
	}
	if sa == nil {
		return err
	}
	for _, r := range sa.Reasons {
		if r == 0x91 { // packet identifier in use: see errSubscribeRetry
			return fmt.Errorf("%w: reason codes %v (packet identifier in use)", errSubscribeRetry, sa.Reasons)
		}
	}
	return fmt.Errorf("broker refused the subscription: reason codes %v (0x87: not authorised, 0x8f: bad filter, 0x9e: shared subscriptions not supported)", sa.Reasons)
}

func (v *v5Conn) disconnect() {
	// The PUBACKs the session's acker wrote (the caller waited for it) are ahead of DISCONNECT on the
	// connection, and closing it flushes both. Reason 0, no Session Expiry Interval property: the one
	// from CONNECT stands and the session stays.
	_ = v.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	<-v.c.Done()
	_ = v.sess.Close() // paho closes only a session state it made itself
}

// connackReason describes a refusing CONNACK's reason code (MQTT 5 section 3.2.2.2) and reason string.
func connackReason(ca *paho.Connack) string {
	text := map[byte]string{
		0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
		0x84: "unsupported protocol version", 0x85: "client identifier not valid", 0x86: "bad user name or password",
		0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy", 0x8a: "banned",
		0x8c: "bad authentication method", 0x90: "topic name invalid", 0x95: "packet too large", 0x97: "quota exceeded",
		0x99: "payload format invalid", 0x9a: "retain not supported", 0x9b: "QoS not supported",
		0x9c: "use another server", 0x9d: "server moved", 0x9f: "connection rate exceeded",
	}[ca.ReasonCode]
	if text != "" {
		text = " (" + text + ")"
	}
	if ca.Properties != nil && ca.Properties.ReasonString != "" {
		text += ": " + ca.Properties.ReasonString
	}
	return text
}
