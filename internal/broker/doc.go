// Package broker is sluice's embedded MQTT broker: what `sluice run` starts when no external broker is
// configured. It owns mochi-mqtt (github.com/mochi-mqtt/server/v2) inside sluice, its listeners (plain
// TCP, TLS with optional client certificates, websockets), client authentication, the
// sluice_broker_* metrics, and one mochi hook that turns every PUBLISH on an ingested topic into an
// envelope (internal/envelope: received-at, source mqtt, QoS, topic, payload bytes untouched) and appends
// it to the log (internal/log). There is no loopback client: messages are taken inside the broker. It
// does not decode payloads, and it is not the client for external brokers (internal/source/mqtt).
//
// It is a real broker: other clients subscribe and receive messages as from any broker; sluice itself
// can publish (alerts) with Publish, and those messages are not ingested. Nor are $SYS topics, or topics
// outside broker.topics (those are still routed to subscribers). A subscriber that falls behind by
// broker.subscriber_queue messages (QoS 1 and 2 unacknowledged, or any QoS not yet written to it) has
// further messages dropped for it, as Mosquitto's max_queued_messages does: counted in
// sluice_broker_subscriber_dropped_total and warned about, and without effect on what is ingested.
//
// # What is durable when
//
// QoS 1 and 2: the hook runs in mochi's processPublish before mochi writes the PUBACK (PUBREC), and
// calls log.Append, which returns once the message is durable. So a PUBACK means "durable in sluice".
// If Append fails (log closed, disk full, no room within append_timeout) the hook disconnects the client
// before returning and returns packets.ErrRejectPacket, on which mochi v2.7.9 returns without
// acknowledging, retaining or routing (any other error but an MQTT 5 reason code would be logged and
// the PUBACK sent anyway; a reason code would be sent as a negative PUBACK, which MQTT 5 clients do not
// resend). The client keeps its session, resends on reconnect, and the duplicates that resends make are
// removed downstream. MQTT 5 clients are sent a DISCONNECT first (0x89 server busy, or 0x8B when the log
// is closed); 3.1.1 has no server DISCONNECT, so their connection is closed. Like any disconnect mochi
// initiates without a read error, this one does not publish the client's will.
//
// QoS 0: log.AppendAsync; nobody waits and nothing is promised. Failures are counted
// (sluice_broker_append_errors_total{qos="0"}) and logged at most every 10s.
//
// Close stops the listeners, disconnects every client and waits for every append in flight, QoS 0
// included. A QoS 1 message whose append completes while its client is being disconnected is durable
// but unacknowledged; the client resends it.
//
// # Memory, and broker.pending_bytes
//
// Between reading a PUBLISH and the log's done (pipelined: its PUBACK), the broker holds the message,
// its envelope encoding and mochi's packet: about 2KiB beside its topic and payload. Each connection may
// hold up to receive_maximum QoS 1 messages that way and, before this budget, any number of QoS 0 ones
// (AppendAsync queues without limit while the log cannot write: a full disk). broker.pending_bytes
// bounds the sum over all connections (pending.go): a read goroutine takes its message's share before
// appending, and waits for room, reading nothing more, while the budget is taken (TCP backpressure on
// that publisher). 32 pipelined QoS 1 connections, 100,000 sensors: the envelope buffers fell from
// 17-23 MB to 6 MB of live heap at the default 16MiB, with no loss of throughput through the embedded
// broker in bench/ (alternated twice: QoS 0 99k/73k readings/s against 104k/75k without a budget, QoS 1
// 58k/54k against 54k/51k).
//
// Sessions (clean session false, MQTT 5 session expiry up to broker.session_expiry) live in mochi's
// memory and end with the process; publishers resend what was not acknowledged from their own stores.
// mochi resends a resumed subscriber's queued messages sorted by their creation second, so their order
// within one second is not kept (mochi v2.7.9 Inflight.GetAll).
//
// # Throughput, and broker.pipeline
//
// mochi calls hooks on each connection's read goroutine, so a hook that waited for the group commit
// would let a connection read its next packet only after each message's commit: one message per commit
// per connection, while many connections share each commit (broker.pipeline: false). broker.pipeline,
// on by default since bench/ measured it (embedded broker, QoS 1, 4 connections: 10k readings/s without
// it, 77k with it), lifts that cap: the hook queues
// the append and returns at once, and when the log calls done the message is handed back to mochi
// (Server.InjectPacket), whose processPublish then acknowledges, retains and routes it. PUBACKs still
// come only after durability and in publish order; see hook_pipeline.go. Measured on this project's
// shared 2-core machines (BenchmarkPublishQoS1: clients in the same process, a group commit with a real
// fdatasync of about 0.2ms per commit; ranges over runs): one connection goes from 1-4k QoS 1 msg/s (one
// message per commit) to 25-50k (60-110 per commit); 64 connections from 7-19k to 40-110k. With a log
// that costs nothing (memlog) pipelining costs CPU instead (a second pass through processPublish).
//
// mochi writes each PUBACK with its own write system call. On TCP and TLS connections (listener_cork.go)
// the acker corks the connection while it hands mochi what it found queued, the messages of one group
// commit mostly, so their PUBACKs leave in one write (at most 256 at a time); other writes pass through.
// Measured with `sluice run` and the simulator at QoS 1 (4 connections, same session): 34 -> 27 µs of
// sluice CPU a message, 33k -> 39k msg/s.
//
// # Goroutines
//
// The owner calls New, Start, then Close, once each, from one goroutine; Ready, the Addr methods and
// Publish may be called from any goroutine. mochi runs an accept goroutine per listener, a read and a
// write goroutine per connection, and an event loop; the hook runs on the read goroutines. The log calls
// AppendAsync's done on its own goroutine; in pipelined mode done queues the message for its
// connection's acker, a goroutine started on demand that exits when its queue is empty. Close waits for
// all of them, except that mochi's accept goroutines may log a line just after Close returns.
//
// # Written here rather than taken from mochi
//
//   - The TCP and TLS listeners are mochi's listeners.Net on listeners bound in Start (so a taken port is
//     Start's error, with the fixes in its text: AddrInUseError) and wrapped to close every accepted
//     connection when the listener closes: mochi's Close waits for connections still in their TLS
//     handshake or before CONNECT without closing them, and would hang on a silent client.
//   - The websocket listener: mochi's binds only inside Serve, on a goroutine, so a taken port would be a
//     log line, and it cannot report the port chosen for ":0".
//   - The topic-filter matcher for broker.topics: mochi's is its locked subscription tree (allocating per
//     lookup, and not matching "a/+/#" against "a/b").
//   - A slog handler that routes mochi's logging into sluice's logger one level quieter, without
//     payloads; mochi otherwise writes to stdout.
package broker
