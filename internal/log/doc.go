// Package log defines the durable log that sits between sources and consumers, and the contract every
// engine keeps. Engines: wal/ (a local write-ahead log, the default), memlog/ (in memory: tests and
// throw-away runs) and, at scale, Kafka. Consumers are written once against these interfaces.
//
// # Contract
//
//   - Append returns only when the entries are durable: after a crash (SIGKILL, or power loss for engines
//     that fsync), every entry whose Append returned nil is read back, in order, with the same offset.
//     Sources acknowledge their upstream (an MQTT PUBACK, an HTTP 200) only after that.
//   - AppendAsync queues entries and calls done once they are durable, in append order. done runs on the
//     log's own goroutine and must not block.
//   - Offsets are per partition, start at 0 and grow by one per entry. An engine with one partition
//     (wal, memlog) uses partition 0.
//   - A consumer group reads from where its Handler says (Assigned returns the next offset to read, which
//     the consumer takes from its own committed output, e.g. the lake's Delta txn version + 1), and tells
//     the log with Committed when its output covers a prefix. The log may then free storage that every
//     registered group has committed; it never frees what any registered group still needs. A group that
//     has registered but not yet committed holds everything.
//   - Fetch returns only durable entries: a consumer never sees an entry that a crash could take back.
//
// # Who calls what
//
// Append/AppendAsync may be called from any number of goroutines. A Consumer is used by one goroutine:
// Fetch, Committed and Close come from that goroutine, and the Handler's callbacks run on it, inside Fetch
// (Assigned) or Close (Revoked), as franz-go runs its group callbacks inside PollFetches.
package log
