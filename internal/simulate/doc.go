// Package simulate is the sensor simulator: `sluice simulate`, `sluice run --simulate`, and the
// message source of tests and load tests. It owns the generation of realistic telemetry (values,
// timestamps, payload shapes, injected faults with their ground truth) and its publication to an MQTT
// broker; it knows nothing of sluice's ingest, log or lake, and talks to sluice only over MQTT.
//
// # Values
//
// Each sensor (from a sensors.json, the built-in five, or a fleet synthesised from them) follows
//
//	value = min + width·(base + walk + cycle + noise), rounded to 2 decimals, kept inside [min, max]
//
// where base is a per-sensor level (35–65% of the range), walk a mean-reverting random walk within
// ±15%, cycle a daily sinusoid of ±15% peaking at 15:00 UTC (shifted ±1h per sensor) and noise a
// clipped Gaussian. The range is the registry's, else a default by type (temperature 0–45 C, humidity
// 0–100 %, pressure 950–1050 hPa, vibration 0–12 mm/s, …; see typeDefaults). Each sensor has its own
// random streams seeded by (seed, sensor id): a sensor's values depend only on the seed and the times
// it publishes at, and injecting faults does not change the values of the messages left intact.
//
// # Shapes and faults
//
// The four shapes are the lines of testdata/fixtures/payload-variants.ndjson (see the Shape constants);
// the timestamp is the scheduled publish time, at µs (ISO shapes, the zone-less one in UTC), ms or s.
// At µs and ms, a sensor's timestamps strictly increase, so (sensor_id, ts) keys are unique unless a
// fault says otherwise. Faults (FaultsConfig) are drawn per message, at most one each; the truth
// file (Truth.AppendJSON, one line per published message) labels every affected message, which is
// what quality and anomaly scoring measure themselves against.
//
// # Publishing, and what "published" means
//
// One goroutine (the pacer, in Run's goroutine) owns the Generator: slot j is due at start + j·slot,
// where slot is interval/sensors (each sensor every interval, phases spread evenly) or 1/rate; it
// generates every due slot, in batches of up to 512, and hands each message to the connection of its
// sensor (sensor i on connection i mod connections, so a sensor's messages stay in order). If
// publishing falls more than 100ms behind (a slow or lost broker) the missed slots are skipped, not
// burst out with stale timestamps, and counted in Stats.Lagged.
//
// Per connection, a publish goroutine hands messages to paho.mqtt.golang as asynchronous tokens, at
// most Inflight unacknowledged, and an ack goroutine waits for the tokens in order. A QoS 0 message
// counts as published once written to the connection; a QoS 1 message (and gets its truth line) once
// the broker's PUBACK arrived, which the simulator learns from the paho.Store it gives each client
// (ackStore), not from tokens: paho completes a token without error when it re-sends the message
// after a reconnect, and with an error when a write fails although the message stays stored and is
// re-sent. At the end Run waits, bounded by DrainTimeout (2s once ctx is done), until every
// connection's store is empty. On connection loss paho reconnects (every ≤2s) and re-sends the
// stored messages, oldest first, with DUP set: the broker may receive a message twice, and a
// sensor's messages may arrive out of order around the outage, but none is lost while the run lasts.
// Stats and the truth file agree: one truth line per published message.
//
// Goroutines: Run's goroutine connects, runs the pacer, then waits and totals; per connection one
// publish and one ack goroutine (plus paho's own, and netbuf's flusher for plain TCP); all end before
// Run returns. Nothing is global; Run may be called concurrently with different configurations.
//
// # Why hand-written
//
// Payloads are appended from per-sensor byte fragments built once (with strconv and time.AppendFormat)
// rather than encoded with encoding/json: the generator must not be the bottleneck of benchmarks that
// push millions of messages (see BenchmarkGenerator). The MQTT client is paho.mqtt.golang, as chosen;
// for mqtt:// and tcp:// brokers it gets a connection that buffers reads and coalesces writes
// (package netbuf), because paho makes one write(2) per packet and three or more read(2)s per PUBACK,
// which capped a connection at a fraction of what it reaches with the wrapper (measured figures in
// BenchmarkPublish's comment).
package simulate
