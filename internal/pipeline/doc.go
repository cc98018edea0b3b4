// Package pipeline owns the consumers of the durable log: the runner that reads a log group and
// commits a stage's output with the offsets it covers, and the stages themselves: the archiver (every
// envelope to the raw/ table, bronze) and the decoder (payloads to readings/, silver, and quarantine/;
// each commit's readings aggregated by minute to readings_1m/, gold: see Rollup1m).
//
// # Exactly once, from an at-least-once log
//
// A stage's output is committed to the lake in Delta commits whose txn action records the last log
// offset covered (appId "<stage>-p<partition>"). On start (and whenever a partition is assigned) the
// stage resumes after the version the lake holds, so a crash between a commit and anything else never
// writes a record twice or skips one. Readings are also deduplicated on (sensor_id, metric, ts) in a
// bounded window (see Dedup), which removes what the log itself may hold twice: an MQTT redelivery of a
// message whose PUBACK was lost, a device repeating itself.
//
// # Goroutines
//
// One goroutine per stage runs Runner.Run: it fetches and processes, so a stage's buffers are touched
// by that goroutine only. The decoder stage also decodes payloads on helper goroutines (one per
// processor beside its own, at most 3; see decodePool) during each Process call: each decodes
// whole chunks of consecutive records with a decode.Decoder of its own, and the stage's goroutine
// merges the chunks in record order — deduplication, the lake writers' buffers and the hot rows
// stay its own — so its output is exactly that of decoding on one goroutine. Decoding is the larger
// part of the stage's work (BenchmarkDecoderProcess, nested shape, 10,000 sensors: ~760 ns a
// reading on one goroutine, ~430–650 on two on this 2-core machine, depending on what else runs);
// helpers end before Process returns. When output is due it seals it (Stage.Seal: the stage goes on into fresh
// buffers) and a second goroutine, the runner's commit goroutine, writes and commits what was sealed
// while the stage processes the next records. One commit is in flight at a time; the next seal waits
// for it, so commits land in offset order and memory holds at most one sealed batch beside the
// buffers being filled. The log hears of a commit only once it is durable. Commits that fail (a full
// disk, an unreachable bucket) are retried with backoff, the same rows with the same offsets, before
// anything sealed later; meanwhile the stage stops at its next seal, the log keeps what it has not
// committed, and once the log is at its size limit sources stop acknowledging: backpressure, never a
// drop.
//
// It must not touch sources, the broker or the log's files: it sees the log only through package log.
package pipeline
