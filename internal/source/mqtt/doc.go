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
// Measured on this project's 2-core machine (BenchmarkMosquitto, 4 publisher connections and Mosquitto
// on the same machine): QoS 0 about 80-90k messages/s, QoS 1 about 25-33k messages/s, both close to a
// bare paho subscriber that keeps nothing (BenchmarkMosquittoBaseline): the publishers and the broker
// use the CPU, not the source (about 0.3µs a message of its own, BenchmarkHandle/nop).
//
// # Goroutines
//
// Run owns the connection loop and runs on the caller's goroutine: connect (dial, CONNECT, SUBSCRIBE),
// serve, and on an error back off and reconnect. Per connection there is a session (session.go): the
// client library's delivery goroutine calls handle for each message in arrival order (encode, queue,
// AppendAsync); the log calls each message's done callback on its goroutine, which only records the
// outcome and wakes the acker; the acker goroutine takes finished messages from the head of the queue
// and acknowledges them in order. On shutdown Run stops taking messages (the rest stay unacknowledged
// at the broker), waits until the acker has acknowledged everything already appended, sends DISCONNECT
// (which keeps the session) and returns. Ready may be called from any goroutine.
//
// # Libraries, and what is written here
//
// Neither Paho library speaks both versions: MQTT 3.1.1 goes through github.com/eclipse/paho.mqtt.golang
// (SetAutoAckDisabled + Message.Ack), MQTT 5 through github.com/eclipse/paho.golang's paho.Client
// (EnableManualAcknowledgment + Client.Ack). Both are used one client per connection with their own
// reconnection off, and sluice's loop reconnects, because:
//
//   - an ack must reach the connection that received the message. A PUBACK written to a later
//     connection with the same packet id would acknowledge a different, not yet durable message. With
//     one client per connection, paho.mqtt.golang drops acks after its connection stopped, and
//     paho.golang's acks go through that connection's own session state (autopaho shares one session
//     state across connections, which is how its issue #160 arises);
//   - an append failure must drop the connection; autopaho has no way to do that but a test hook;
//   - shutdown must send the acks of what was appended before DISCONNECT; autopaho disconnects at once.
//
// paho.golang sends manual acks from a ticker (every v5AckInterval), so a graceful MQTT 5 disconnect
// waits three ticks first. paho.mqtt.golang forwards acks and DISCONNECT through one goroutine, in
// order, so an MQTT 3.1.1 disconnect needs no wait.
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
// library exports a dialer that takes a context); and the in-order ack queue, because a log done
// callback must not block and paho.mqtt.golang's Ack can (it hands the PUBACK to the writer goroutine).
package mqtt
