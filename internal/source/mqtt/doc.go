// Package mqtt owns the source for external MQTT brokers (Mosquitto, EMQX, HiveMQ…): `sluice run
// --broker mqtt://host:1883`. It subscribes with a persistent session, wraps each message in an
// envelope (package envelope: received-at, source mqtt, QoS, topic, payload byte for byte) and appends
// it to the durable log (package log), and acknowledges the message to the broker only once the append
// is durable. It owns the connection to the broker and nothing downstream of the log; the embedded
// broker is package broker.
//
// # What is durable when
//
// A QoS 1 message is acknowledged (PUBACK) only after the log's AppendAsync reported it durable, and
// acknowledgements go out in the order the messages arrived. Until then the broker holds the message in
// sluice's session: if sluice is killed, the network drops or the broker restarts, the session resumes
// on the next connection (MQTT 3.1.1 clean session 0; MQTT 5 clean start 0 with a session expiry) and
// the broker redelivers every unacknowledged message. Nothing is lost; some messages may be in the log
// twice (deduplicated downstream). If an append fails, nothing more is acknowledged on that connection:
// the source disconnects, waits (backoff, growing), and reconnects, and the broker redelivers. QoS 0
// messages are appended the same way but the broker never resends them.
//
// The session lives on the broker under the fixed client_id. Two instances with one client id take
// the session from each other; instances that share the load use shared_group ($share/<group>/<filter>)
// with a client id each.
//
// # Flow control
//
// Acknowledging after the group commit means each message is in flight for a commit's time, and a
// broker lets only so many be in flight per client (Mosquitto max_inflight_messages, default 20; MQTT 5
// Receive Maximum, which sluice sends as max_inflight). Every message is handed to the log at once
// (AppendAsync), so all of those in flight share one group commit, and the acks of a whole commit go
// out together. max_inflight also bounds the messages held in memory: when that many are waiting for
// the log, the delivery goroutine waits, and TCP pushes back on the broker. (QoS 0 has no flow control:
// if the log stays slower than the broker for longer than the keep-alive, the connection drops and the
// QoS 0 messages in transit are lost, as QoS 0 allows.)
//
// # CPU per message
//
// On a 2-core machine the publishers, the broker and sluice share the cores, so sluice's CPU per
// message sets how close it comes to what the broker can deliver (bench/RESULTS.md, "broker"). The
// connection is buffered (package netbuf: one read(2) takes tens of messages, and the PUBACKs of a
// group commit leave in one write(2)), and the source writes the PUBACKs itself (pubackWriter, below).
//
// Measured at 548f933 (perf record -g on the sluice process during `go run ./bench -only broker
// -brokers mosquitto -runs 1`, whole process: source, WAL, archiver, decoder, lake, hot rows): QoS 0
// 13.8µs a message, QoS 1 19.2µs; the embedded broker in the same session 16.7µs and 22.1µs, its
// broker's work included. Of the QoS 0 figure the client library's three goroutines (reader,
// incoming, router) are about 9% (1.3µs), the source's own handle about 3.5% (0.5µs, BenchmarkHandle/nop
// 0.25µs); the rest is what the embedded path pays too: the stages and their lake commits 37%, the
// WAL 7% (fdatasync 4%), hot rows 7%, the Go runtime's sysmon, thread wake-ups and context switches
// 13-20%, page faults of a growing heap 6%, garbage collection 3%, and 2.5% answering the bench's
// /metrics polls. The external path is not dearer than the embedded one; the figures in
// bench/RESULTS.md (QoS 0 58.7µs, QoS 1 107µs) were taken with other work on the machine (Mosquitto's
// own CPU per message was 3x today's too). CPU per message grows as arrivals thin out, because costs
// per wake-up and per group commit are shared by fewer messages: paced at 20,000 msg/s, QoS 0 costs
// 30-42µs through Mosquitto and 36µs through the embedded broker, a quarter of it fdatasyncs (one per
// ~20 messages, back to back; see wal.commit_interval, which cuts it).
//
// Since MQTT 3.1.1 is read by sluice's own loop (v311Conn) instead of paho.mqtt.golang's client,
// sluice's CPU per message in the same measurement, old and new binaries alternated twice on a slower
// machine (AMD EPYC, 2 cores, where Mosquitto itself costs 3x the figures above): QoS 0 21.4 and 26.6
// → 18.9 and 16.8 µs, QoS 1 32.3 and 40.3 → 27.9 and 32.1 µs.
//
// # Goroutines
//
// Run owns the connection loop and runs on the caller's goroutine: connect (dial, CONNECT, SUBSCRIBE),
// serve, and on an error back off and reconnect. Per connection there is a session (session.go): the
// connection's reader (MQTT 3.1.1: v311Conn's; MQTT 5: paho.golang's delivery goroutine) calls handle
// for each message in arrival order (encode, queue,
// AppendAsync); the log calls each message's done callback on its goroutine, which only records the
// outcome and wakes the acker; the acker goroutine takes finished messages from the head of the queue
// and writes their PUBACKs in order, those of one wake-up with one Write; package netbuf's flusher
// goroutine puts them on the wire. On shutdown Run stops taking messages (the rest stay
// unacknowledged at the broker), waits until the acker has written the PUBACKs of everything already
// appended, sends DISCONNECT (behind them on the connection; closing it flushes both) and returns.
// Ready may be called from any goroutine.
//
// # Libraries, and what is written here
//
// MQTT 3.1.1 is spoken by v311Conn (conn_v311.go): the packets are encoded and decoded by
// github.com/eclipse/paho.mqtt.golang's packets package, and the session loop around them (CONNECT,
// SUBSCRIBE, a reader goroutine that hands each PUBLISH to the session, PINGREQ every keep-alive) is
// sluice's own, because paho.mqtt.golang's client passes every message through three goroutines and
// their channels (reader, router, delivery), which cost more CPU than the rest of the source: 6.2-6.8
// µs a QoS 1 message where the same packets read by one goroutine took 1.5-1.8 µs (a test server
// sending 400,000 pre-encoded PUBLISH packets over loopback TCP to each, netbuf under both, process
// CPU per message with the server's share included; AMD EPYC, 2 cores, 2026-12-03). MQTT 5 goes
// through github.com/eclipse/paho.golang's paho.Client (with its in-memory session state, whose Ack
// does nothing: v5Session). Each connection is its own client, with no reconnection of its own, and
// sluice's loop reconnects, because:
//
//   - an ack must reach the connection that received the message. A PUBACK written to a later
//     connection with the same packet id would acknowledge a different, not yet durable message. Each
//     connection has its own session, whose acker writes only to that connection (autopaho shares one
//     session state across connections, which is how its issue #160 arises);
//   - an append failure must drop the connection; autopaho has no way to do that but a test hook;
//   - shutdown must send the acks of what was appended before DISCONNECT; autopaho disconnects at once.
//
// The PUBACKs are written by the source (pubackWriter) in both versions, not through paho.golang's
// acknowledgement calls: its manual acknowledgement scans a list of every message in flight on each
// message and each Ack and sends from a ticker. A PUBACK is 4 bytes (0x40, 2, packet id) in both
// versions; it shares the connection with the other writes safely because each packet is one Write
// (paho.golang's through its packets.ThreadSafeConn lock, which the PUBACKs take too) and package
// netbuf keeps Writes whole.
//
// # Brokers
//
// Any MQTT 3.1.1 or 5 broker works; the tests run against Mosquitto and mochi-mqtt (the embedded
// broker's library, which runs everywhere). mochi-mqtt v2.7.9 has faults the source works around or the
// tests avoid: it refuses a SUBSCRIBE whose packet id equals a message it is redelivering (the source
// repeats the SUBSCRIBE, see errSubscribeRetry); its MQTT 5 Receive Maximum handling can deadlock and
// drop queued messages (the source does not send Receive Maximum when max_inflight is 65535, the
// protocol default); and it can lose messages published while a session is being taken over by a
// reconnecting client.
//
// Written by hand: the network dial (TCP, TLS, websocket) so that cancelling Run aborts a connection
// attempt at once, which needs a websocket-to-net.Conn adapter over gorilla/websocket (neither Paho
// library exports a dialer that takes a context); the in-order ack queue, because a log done callback
// must not block and a write to the connection can (netbuf's backpressure); the PUBACK packets, and the
// MQTT 3.1.1 session loop (not its packet codec), for the CPU costs above. The connection's buffering
// is package netbuf's.
package mqtt
