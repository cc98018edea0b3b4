// Command chaos breaks sluice on purpose while it ingests, and proves by counting that nothing was lost
// and nothing stored twice:
//
//	go run ./bench/chaos                   # every scenario, full size (a few minutes)
//	go run ./bench/chaos -quick            # seconds: what `go test ./bench/chaos` runs
//	go run ./bench/chaos -only sigkill-embedded,hostile
//
// Each scenario reports sent / acknowledged / in lake / duplicates / lost, plus its own checks, and
// the command exits 1 unless every scenario ends with lost = 0, no duplicate in readings/ and its
// checks passed. The table goes to stdout and to bench/chaos/RESULTS.md.
//
// # Scenarios
//
//   - sigkill-embedded, sigkill-mosquitto: QoS 1 publishers (the simulator, persistent stores that
//     resend what was not acknowledged) send to sluice's embedded broker, or to a Mosquitto that sluice
//     subscribes to with a persistent session; sluice is SIGKILLed 20 times, each time once the log has
//     grown by another share of the messages plus a random 0–300 ms, and restarted on the same data
//     directory and port.
//   - restart-mosquitto: Mosquitto (persistence on) is stopped and started 5 times during ingest.
//   - restart-embedded: sluice itself, whose broker it is, is stopped with SIGTERM and started 5 times.
//   - disk-full: sluice's data directory (log and lake) is on a 16 MiB tmpfs, which is filled with a
//     ballast file during ingest and kept full; a canary publisher's QoS 1 PUBACKs must stop, logs and
//     metrics must say why, and once the ballast is deleted PUBACKs must resume by themselves. Then
//     sluice is restarted to show the log needs no repair, and every committed file is read. Where
//     mounting is not allowed, the substitute is RLIMIT_FSIZE = 0 on the sluice process (prlimit):
//     every write that grows a file fails with EFBIG, as on a full disk; raising it is "space returns".
//   - hostile: 1% of the messages are undecodable or hostile (invalid JSON, binary garbage, 100 KiB
//     payloads, 10,000-deep nesting, invalid UTF-8, huge ids, non-finite numbers, timestamps out of
//     range, …); every one must be in quarantine/ with a reason and a detail, and the other 99% in
//     readings/ with their values, raw/ holding all.
//
// Publishers are the simulator at a paced rate with 50 QoS 1 messages in flight per connection (a
// device's window, not the simulator's default of 1,000, which would pile up thousands per outage and
// end a short scenario in one burst), each message acknowledged writing a ground-truth line.
//
// Accounting: "sent" is what the publishers handed to MQTT, "acknowledged" what got a PUBACK (from
// sluice's broker, or from Mosquitto), "in lake" the acknowledged messages found in readings/ with
// their exact value (read back with DuckDB from the files the Delta log names), "lost" acknowledged
// but not found, "duplicates" rows of readings/ beyond one per (sensor_id, metric, ts). With an
// external broker a sentinel message is published last and awaited in readings/, so everything
// Mosquitto queued for sluice has been taken in before sluice is stopped.
//
// # Goroutines
//
// main runs one scenario at a time. A scenario runs the simulator on a goroutine of its own (and the
// canary and ballast filler for disk-full), and waits for them before it returns.
package main
