// Package pipeline owns the consumers of the durable log: the runner that reads a log group and
// commits a stage's output with the offsets it covers, and the stages themselves: the archiver (every
// envelope to the raw/ table, bronze) and the decoder (payloads to readings/, silver, and quarantine/).
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
// One goroutine per stage runs Runner.Run: it fetches, processes, and commits in turn, so a stage's
// state is touched by that goroutine only. Commits that fail (a full disk, an unreachable bucket) are
// retried with backoff; meanwhile the stage reads nothing, the log keeps what it has not committed, and
// once the log is at its size limit sources stop acknowledging: backpressure, never a drop.
//
// It must not touch sources, the broker or the log's files: it sees the log only through package log.
package pipeline
