package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/log"
)

// ingestHook is sluice's mochi hook: it authenticates clients and appends every ingested PUBLISH to
// the log. mochi calls it on each connection's read goroutine.
type ingestHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *ingestHook) ID() string { return "sluice-ingest" }

func (h *ingestHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnPublish || b == mqtt.OnDisconnect ||
		b == mqtt.OnPublishDropped
}

// OnPublishDropped hears of a message mochi dropped for a subscriber whose write queue is full.
func (h *ingestHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.b.subscriberDropped(cl.ID)
}

// OnConnectAuthenticate accepts anyone when no username is configured, else exactly the configured
// username and password (compared in constant time). While the broker closes it refuses everyone.
func (h *ingestHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	if b.closing.Load() {
		return false
	}
	if len(b.user) == 0 {
		return true
	}
	ok := subtle.ConstantTimeCompare(pk.Connect.Username, b.user)&subtle.ConstantTimeCompare(pk.Connect.Password, b.pass) == 1
	if !ok {
		b.logger.Info("MQTT client refused: bad username or password", "client", cl.ID, "remote", cl.Net.Remote, "listener", cl.Net.Listener)
	}
	return ok
}

// OnACLCheck lets every authenticated client publish and subscribe anywhere (mochi's default is deny).
func (h *ingestHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// OnPublish appends the message before mochi acknowledges it; see Broker.ingest.
func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	return pk, h.b.ingest(cl, pk)
}

// OnDisconnect runs after the client's read goroutine has ended.
func (h *ingestHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if h.b.cfg.Pipeline {
		h.b.dropPipe(cl)
	}
}

// appendBuf is one message's encoding (topic, then envelope) and what its AppendAsync needs, pooled.
type appendBuf struct {
	b       *Broker
	buf     []byte
	entries [1]log.Entry
	qos     uint8
	start   time.Time
	done    func(error)    // bound once to asyncDone, so AppendAsync allocates no closure per message
	pdone   func(error)    // bound once to pipeDone
	pipe    *pipe          // pipelined QoS 1 and 2: the connection's pipe
	pk      packets.Packet // and the packet to acknowledge once durable
	held    int64          // its share of broker.pending_bytes, given back by putBuf
}

// maxPooledBuf is the largest buffer kept for reuse; rarer, larger messages allocate their own.
const maxPooledBuf = 64 << 10

func (b *Broker) getBuf() *appendBuf {
	if ab, ok := b.bufs.Get().(*appendBuf); ok {
		return ab
	}
	ab := &appendBuf{b: b}
	ab.done, ab.pdone = ab.asyncDone, ab.pipeDone
	return ab
}

func (b *Broker) putBuf(ab *appendBuf) {
	b.pending.give(ab.held)
	ab.held = 0
	if cap(ab.buf) <= maxPooledBuf {
		ab.entries[0] = log.Entry{}
		b.bufs.Put(ab)
	}
}

// ingest turns a PUBLISH into an envelope and appends it.
//
// QoS 1 and 2: log.Append, waited for (up to append_timeout) on this connection's read goroutine, so
// mochi writes the PUBACK (PUBREC) only after it returns nil. If it fails, the client is disconnected
// here, before returning, and ErrRejectPacket makes mochi return without acknowledging, retaining or
// routing the message (mochi v2.7.9 server.go processPublish: ErrRejectPacket returns at once; any other
// error but a v5 reason code would be ignored and the PUBACK sent). The client's persistent session
// and its own store make it resend the message when it reconnects. MQTT 5 clients get a DISCONNECT
// with reason 0x89 (server busy) or 0x8B (shutting down) first; 3.1.1 has no server DISCONNECT, so
// their connection is just closed.
//
// QoS 0: log.AppendAsync; nobody waits. A failure is counted and logged (at most every 10s).
//
// With broker.pipeline, QoS 1 and 2 take the path in hook_pipeline.go instead.
func (b *Broker) ingest(cl *mqtt.Client, pk packets.Packet) error {
	if cl.Net.Inline {
		return nil // sluice's own messages (Broker.Publish)
	}
	if b.cfg.Pipeline && pk.SessionPresent {
		return nil // pipelined: durable already, re-injected to be acknowledged (see hook_pipeline.go)
	}
	if !b.topics.match(pk.TopicName) {
		b.m.skipped.Inc()
		return nil
	}
	qos := min(pk.FixedHeader.Qos, 2)
	b.m.received[qos].Inc()
	start := time.Now()
	cost := b.pending.cost(pk.TopicName, pk.Payload)
	ok, full := b.pending.take(cost, b.cfg.AppendTimeout)
	if full {
		b.pendingFull(cl)
	}
	if !ok {
		return b.notStored(cl, pk, errPendingTimeout)
	}
	ab := b.getBuf()
	ab.held = cost
	env := envelope.Envelope{
		ReceivedAt: start.UnixNano(),
		Source:     envelope.SourceMQTT,
		QoS:        qos,
		Topic:      pk.TopicName,
		Payload:    pk.Payload,
	}
	// One buffer holds the key (the topic: it partitions on engines that have partitions) and the value.
	buf := append(ab.buf[:0], pk.TopicName...)
	buf = env.AppendBinary(buf)
	ab.buf = buf
	ab.entries[0] = log.Entry{Key: buf[:len(pk.TopicName)], Value: buf[len(pk.TopicName):]}

	if qos == 0 {
		if !b.async.add() {
			b.putBuf(ab)
			b.qos0Failed(cl, pk.TopicName, ErrClosed)
			return nil
		}
		ab.qos, ab.start = qos, start
		b.lazy(ab.entries[:], ab.done) // acknowledged to no one: may share a later fsync
		return nil
	}

	if b.cfg.Pipeline {
		ab.start = start
		return b.ingestPipelined(cl, pk, ab)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.AppendTimeout)
	err := b.log.Append(ctx, ab.entries[:]...)
	cancel()
	b.putBuf(ab)
	if err == nil {
		b.m.appendSeconds[qos].Observe(time.Since(start).Seconds())
		return nil
	}
	return b.notStored(cl, pk, err)
}

var errPendingTimeout = errors.New("no room in broker.pending_bytes within append_timeout")

// notStored handles a message that ingest could not append (err says why) and returns what the hook
// returns to mochi: a QoS 0 message is counted as lost; a QoS 1 or 2 publisher is disconnected without
// an acknowledgement, so that it resends.
func (b *Broker) notStored(cl *mqtt.Client, pk packets.Packet, err error) error {
	qos := min(pk.FixedHeader.Qos, 2)
	if qos == 0 {
		b.qos0Failed(cl, pk.TopicName, err)
		return nil
	}
	b.m.appendErrors[qos].Inc()
	b.logger.Warn("message not stored: disconnecting its publisher without an acknowledgement, so that it resends",
		"client", cl.ID, "remote", cl.Net.Remote, "topic", pk.TopicName, "qos", qos, "err", err)
	b.refuse(cl, err)
	return packets.ErrRejectPacket
}

// pendingFull says, at most every 10s, that a connection waits for room in broker.pending_bytes.
func (b *Broker) pendingFull(cl *mqtt.Client) {
	if !warnDue(&b.pending.lastWarn) {
		return
	}
	b.logger.Warn("broker.pending_bytes is full: connections wait before reading more messages (backpressure) until the log has stored those it holds (further waits in the next 10s are only counted in sluice_broker_pending_waits_total)",
		"client", cl.ID, "pending_bytes", b.cfg.PendingBytes)
}

// asyncDone runs on the log's goroutine when a QoS 0 append is durable or failed; it must not block.
func (ab *appendBuf) asyncDone(err error) {
	b, qos := ab.b, ab.qos
	if err == nil {
		b.m.appendSeconds[qos].Observe(time.Since(ab.start).Seconds())
	}
	topic := ""
	if err != nil {
		topic = string(ab.entries[0].Key)
	}
	b.putBuf(ab)
	if err != nil {
		b.qos0Failed(nil, topic, err)
	}
	b.async.done()
}

// warnEvery is how often a warning about something that may happen once a message is logged.
const warnEvery = 10 * time.Second

// warnDue reports whether a warning last logged at *last (Unix nanoseconds) may be logged again now,
// and if so records now; of callers racing, one wins.
func warnDue(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(warnEvery) && last.CompareAndSwap(prev, now)
}

func (b *Broker) qos0Failed(cl *mqtt.Client, topic string, err error) {
	b.m.appendErrors[0].Inc()
	if !warnDue(&b.lastWarn) {
		return
	}
	attrs := []any{"topic", topic, "err", err}
	if cl != nil {
		attrs = append(attrs, "client", cl.ID)
	}
	b.logger.Warn("QoS 0 message lost: append to the log failed (further QoS 0 losses in the next 10s are only counted in sluice_broker_append_errors_total)", attrs...)
}

// subscriberDropped logs that the broker dropped a message for a subscribing client whose queue
// (broker.subscriber_queue) is full, at most once every 10s; sluice_broker_subscriber_dropped_total
// counts every one.
func (b *Broker) subscriberDropped(client string) {
	if !warnDue(&b.lastDrop) {
		return
	}
	b.logger.Warn("message dropped for a subscriber that does not keep up: its queue (broker.subscriber_queue) is full; ingest is not affected (further drops in the next 10s are only counted in sluice_broker_subscriber_dropped_total)",
		"client", client, "subscriber_queue", b.cfg.SubscriberQueue)
}

// refuse disconnects a client whose QoS 1 or 2 message could not be stored. It runs on the client's read
// goroutine before mochi could write an acknowledgement; once Stop has run, mochi's WritePacket fails
// for this client, whatever happens next.
func (b *Broker) refuse(cl *mqtt.Client, err error) {
	if cl.Properties.ProtocolVersion >= 5 {
		code := packets.ErrServerBusy
		if errors.Is(err, log.ErrClosed) {
			code = packets.ErrServerShuttingDown
		}
		code.Reason = "message not stored, resend it: " + code.Reason
		_ = b.srv.DisconnectClient(cl, code) // writes DISCONNECT, then stops the client
	}
	cl.Stop(fmt.Errorf("append to log: %w", err))
}
