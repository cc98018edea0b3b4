package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sluicelog "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/netbuf"
)

// Errors Ready returns before the first connection and after Run ended.
var (
	// errSubscribeRetry marks a refused SUBSCRIBE that may succeed when repeated on the same connection.
	// mochi-mqtt (v2.7.9) refuses a SUBSCRIBE whose packet identifier equals that of a message it is
	// still redelivering to the client (reason 0x91, "packet identifier in use"; 0x80 to an MQTT 3.1.1
	// client), although client and server identifiers are independent (MQTT 5 section 2.2.1). The
	// redelivered messages are acknowledged within milliseconds, and each new SUBSCRIBE takes the next
	// identifier, so a few repeats succeed.
	errSubscribeRetry = errors.New("subscription refused")

	// errAppendFailed marks a connection ended because an append to the log failed.
	errAppendFailed = errors.New("append to the log failed")

	ErrNotConnected = errors.New("mqtt source: not connected to the broker yet")
	ErrStopped      = errors.New("mqtt source: stopped")
)

// Source subscribes to an external MQTT broker and appends every message to the log, acknowledging
// it only once the append is durable.
type Source struct {
	cfg    Config
	url    *url.URL
	tls    *tls.Config // nil for plain schemes
	log    sluicelog.Appender
	lazy   func([]sluicelog.Entry, func(error)) // sluicelog.LazyOf(log): how QoS 0 messages are appended
	logger *slog.Logger
	m      *metrics

	// open connects one session (the protocol's client library); set by New.
	open func(ctx context.Context, ss *session) (conn, error)

	running  atomic.Bool
	readyMu  sync.Mutex
	readyErr error
}

// conn is one MQTT connection made by a client library. Messages go to the session it was opened for,
// from the moment the broker accepts the connection (a resumed session's redeliveries come before the
// SUBACK).
type conn interface {
	// subscribe subscribes to filters at qos and returns once the broker granted them all.
	subscribe(ctx context.Context, filters []string, qos byte) error
	// disconnect sends DISCONNECT, which keeps the persistent session, closes the connection and waits
	// for the library's goroutines. Acknowledgements written before (by the session's acker) go out
	// first: closing the connection flushes them, then DISCONNECT.
	disconnect()
}

// New returns a source for cfg (validated) that appends to l. logger receives connection events;
// metrics are registered on reg unless it is nil.
func New(cfg Config, l sluicelog.Appender, logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	if cfg.Broker == "" {
		return nil, errors.New("mqtt source: no broker URL (mqtt.broker is empty)")
	}
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("mqtt source: %w", err)
	}
	u, err := parseBroker(cfg.Broker)
	if err != nil {
		return nil, fmt.Errorf("mqtt source: broker: %w", err)
	}
	s := &Source{cfg: cfg, url: u, log: l, logger: logger, readyErr: ErrNotConnected}
	s.lazy = sluicelog.LazyOf(l)
	if isTLSScheme(u.Scheme) {
		if s.tls, err = cfg.TLS.build(); err != nil {
			return nil, fmt.Errorf("mqtt source: tls.%w", err)
		}
	}
	if s.m, err = newMetrics(reg); err != nil {
		return nil, err
	}
	if cfg.Protocol == Protocol5 {
		s.open = s.openV5
	} else {
		s.open = s.openV311
	}
	return s, nil
}

// Ready returns nil while the source is connected and subscribed, else why not.
func (s *Source) Ready() error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	return s.readyErr
}

func (s *Source) setReady(err error) {
	s.readyMu.Lock()
	s.readyErr = err
	s.readyMu.Unlock()
	if err == nil {
		s.m.connected.Set(1)
	} else {
		s.m.connected.Set(0)
	}
}

// Run connects (retrying with backoff), subscribes and ingests until ctx is done. Then it stops taking
// messages, waits until those already handed to the log are durable and acknowledged, and disconnects
// without ending the persistent session. It returns ctx.Err(); it is called once.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("mqtt source: Run called twice")
	}
	defer s.setReady(ErrStopped)
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ss, c, err := s.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errAppendFailed) {
				s.m.reconnects.WithLabelValues(reasonAppendError).Inc()
			} else {
				s.m.connectErrors.Inc()
			}
			failures++
			delay := s.backoff(failures)
			err = fmt.Errorf("connect to %s: %w", s.url, err)
			s.setReady(err)
			s.logger.Warn("cannot connect to the MQTT broker; retrying", "attempt", failures, "retry_in", delay.Round(time.Millisecond), "err", err)
			if !sleep(ctx, delay) {
				return ctx.Err()
			}
			continue
		}
		start := time.Now()
		s.setReady(nil)
		s.logger.Info("connected to the MQTT broker and subscribed", "broker", s.url.String(), "client_id", s.cfg.ClientID,
			"protocol", s.cfg.Protocol, "topics", s.cfg.filters(), "qos", s.cfg.QoS)

		reason, cause := s.serve(ctx, ss, c)
		if ctx.Err() != nil {
			s.logger.Info("disconnected from the MQTT broker; the session stays for the next start", "client_id", s.cfg.ClientID)
			return ctx.Err()
		}
		s.setReady(fmt.Errorf("connection to %s ended: %w", s.url, cause))
		s.m.reconnects.WithLabelValues(reason).Inc()
		if reason == reasonConnectionLost && time.Since(start) >= s.cfg.ReconnectBackoffMax {
			failures = 0 // a long healthy connection: start the backoff over
		}
		failures++
		delay := s.backoff(failures)
		s.logger.Warn("connection to the MQTT broker ended; reconnecting, and the broker will redeliver what was not acknowledged",
			"reason", reason, "retry_in", delay.Round(time.Millisecond), "err", cause)
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// maxSubscribeAttempts bounds the SUBSCRIBE repeats for errSubscribeRetry (about 0.5s in all).
const maxSubscribeAttempts = 10

// connect dials, connects with the persistent session and subscribes.
func (s *Source) connect(ctx context.Context) (*session, conn, error) {
	ss := newSession(s)
	c, err := s.open(ctx, ss)
	if err != nil {
		ss.lose(err)
		ss.end()
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	for attempt := 1; ; attempt++ {
		err = c.subscribe(sctx, s.cfg.filters(), byte(s.cfg.QoS))
		if err == nil || !errors.Is(err, errSubscribeRetry) || attempt == maxSubscribeAttempts {
			break
		}
		t := time.NewTimer(time.Duration(attempt) * 10 * time.Millisecond)
		select {
		case <-t.C:
			continue
		case <-sctx.Done():
		case <-ss.fail:
		}
		t.Stop()
		break
	}
	cancel()
	if _, fail := ss.errs(); fail != nil {
		// A redelivered message failed to append before the subscription was made (it is never
		// acknowledged, which can also be why mochi refused the SUBSCRIBE): start over like serve does.
		ss.lose(errors.New("append failed"))
		c.disconnect()
		ss.end()
		return nil, nil, fmt.Errorf("%w: %w", errAppendFailed, fail)
	}
	if err != nil {
		ss.lose(err)
		c.disconnect()
		ss.end()
		return nil, nil, fmt.Errorf("subscribe: %w", err)
	}
	return ss, c, nil
}

// serve ingests on one connection until it is lost, an append fails or ctx is done, and then ends it.
// It returns why the connection ended (unless ctx is done).
func (s *Source) serve(ctx context.Context, ss *session, c conn) (reason string, cause error) {
	select {
	case <-ctx.Done():
		s.setReady(ErrStopped)
		ss.end() // in-flight appends finish and are acknowledged on this connection
		c.disconnect()
		return "", ctx.Err()
	case <-ss.down:
		s.setReady(ErrNotConnected)
		ss.end()
		c.disconnect()
		down, _ := ss.errs()
		return reasonConnectionLost, down
	case <-ss.fail:
		s.setReady(ErrNotConnected)
		// Drop the connection first: the broker stops sending, and redelivers everything unacknowledged
		// when the session resumes.
		ss.lose(errors.New("append failed"))
		c.disconnect()
		ss.end()
		_, fail := ss.errs()
		return reasonAppendError, fmt.Errorf("%w: %w", errAppendFailed, fail)
	}
}

// backoff returns the wait before reconnection attempt n (n >= 1): reconnect_backoff_min doubled per
// failure, capped at reconnect_backoff_max, with the upper half jittered so that many instances do not
// reconnect in step.
func (s *Source) backoff(n int) time.Duration {
	d := s.cfg.ReconnectBackoffMin
	for i := 1; i < n && d < s.cfg.ReconnectBackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.ReconnectBackoffMax)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dial opens the network connection for one session (TCP, TLS or websocket), buffered (package
// netbuf: one read(2) for many packets, one write(2) for the acknowledgements written meanwhile) and
// watched so that the session learns of its loss at once. ctx bounds the dial (and the connection
// timeout too).
func (s *Source) dial(ctx context.Context, ss *session) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	switch s.url.Scheme {
	case "mqtt", "tcp":
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", s.url.Host)
	case "mqtts", "ssl", "tls":
		d := tls.Dialer{Config: s.tls}
		nc, err = d.DialContext(ctx, "tcp", s.url.Host)
	case "ws", "wss":
		nc, err = dialWebsocket(ctx, s.url, s.tls)
	default:
		err = fmt.Errorf("scheme %q is not supported", s.url.Scheme)
	}
	if err != nil {
		return nil, err
	}
	// Closing the dialled connection itself aborts a connect at once (closeConn); the client library
	// gets it with buffered reads and coalesced writes (see package netbuf), and closes that.
	ss.setConn(nc)
	return &watchedConn{Conn: netbuf.New(nc), ss: ss}, nil
}
