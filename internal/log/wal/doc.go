// Package wal is the local write-ahead log, sluice's default log engine: the log.Log of package log with
// one partition (0), stored as segment files in one directory. The on-disk format and the recovery rules
// are specified in docs/format/wal.md.
//
// It owns its directory (locked with flock while open): segment files named by the offset of their first
// record (00000000000000000000.wal), each a 16-byte header and then records framed as length, CRC32-C,
// payload. Payloads are opaque bytes (encoded envelopes); the package knows nothing of envelopes.
//
// # What is durable when a call returns
//
//   - Append returns nil, and AppendAsync calls done(nil), only after every entry has been written and
//     fdatasynced (with wal.fsync: false, written to the page cache: survives SIGKILL, not power loss).
//     An error means the entries may or may not be in the log; they are never acknowledged.
//   - Fetch returns only records that are durable in that sense.
//   - Committed deletes, before it returns, every whole segment that all registered groups have
//     committed (never the segment being written): the log does not persist group offsets, a
//     consumer says where it resumes (Handler.Assigned) and holds everything until it commits again.
//   - Open repairs what a crash or damage left. A torn tail of the last segment (the part of a write a
//     crash interrupted, never fdatasynced, never acknowledged: a partial record or one whose CRC fails,
//     with no intact record after it) is truncated, with a warning naming the segment and byte offset.
//     Any other damage (a bad record followed by intact ones, damage in a sealed segment, a bad header)
//     is never deleted: the damaged remainder is moved to <segment>.corrupt-<byte offset>, an error
//     carrying a CorruptionErr (segment, offset) is logged, and the log goes on with what is intact. If
//     the remainder was in the last segment, new records start at an offset above any it may have held,
//     so no offset a consumer may have committed is handed out twice. Records missing between segments
//     are logged and skipped by readers.
//
// # Goroutines
//
// Append and AppendAsync may be called from any goroutine. They queue a request; one writer goroutine
// (run) owns the segment being written: it takes everything queued while the previous fdatasync ran
// (up to wal.max_batch_bytes), writes it with one pwrite and one fdatasync (group commit), publishes the
// new durable end to readers, then completes the requests in queue order: Append's caller is woken,
// AppendAsync's done is called on the writer goroutine (so it must not block). It then yields once, so
// that the appenders it woke queue their next append before it takes the next batch: otherwise
// synchronous appenders settle into two groups that alternate, halving the records per fdatasync
// (measured: 8 appenders went from 3.8 to 7.5 records per fdatasync, 64 from 31 to 48). With
// wal.commit_interval set, the writer also holds a commit back until that long after the previous one
// took its batch (not when the previous one is older, nor when max_batch_bytes are queued): a steady
// stream then costs one fdatasync per interval, not one per fdatasync's duration. Each fdatasync costs
// CPU besides its wait (on the benchmark VM ~100µs: the block layer, a virtio notification, and the
// Go runtime's sysmon handing the blocked P to another thread), which at 20,000 msg/s through an
// external Mosquitto was a quarter of sluice's CPU per message (bench/RESULTS.md's setup: 39-43µs per
// message with 0, 29-34µs with 5ms, at QoS 0 and 1). The default is 2ms, and it holds back only queues
// holding an asynchronous append (AppendAsync: the MQTT source, the embedded broker's pipeline): a
// queue of synchronous Appends only is committed at once, since each caller appends again only once
// committed and the interval would cap it at one append per interval (BenchmarkAppend, 64 appenders:
// 117k records/s without it, 22k with it). Through Mosquitto at QoS 1 (go run ./bench -only broker
// -runs 1, alternated twice) sluice's CPU per message went 14.2/16.9 → 10.7/11.6µs and its ratio to
// the ceiling 0.925/0.938 → 1.193/1.085; through the embedded broker 19.5/18.5 → 16.1/16.7µs.
// AppendLazy (log.LazyAppender) marks appends nobody waits on promptly (MQTT QoS 0 messages, from the
// MQTT source and the embedded broker): while only those are queued, wal.lazy_commit_interval (2ms)
// applies instead, and an append that is waited on ends the wait (lazy ones do not wake the waiting
// writer). At 30,000 QoS 0 msg/s from Mosquitto to sluice --broker for 10s (same binary, the setting
// alternated twice): 5,285-7,243 fdatasyncs with 0, 2,579-3,352 with 2ms, and sluice's CPU per
// message 22.8-25.5 → 21.5-23.6µs; through the embedded broker (go run ./bench -only broker -brokers
// embedded -runs 1, alternated twice) the QoS 0 ratio went 1.054/1.034 → 1.248/1.349. A
// source that bounds what it has in flight (mqtt.max_inflight, 1,000) is held to that many QoS 0
// messages per interval (500,000/s at 2ms). When wal.max_size bytes
// are retained the writer waits (backpressure) until a Committed call frees a segment; Append gives up
// with ctx's error if its entries are still queued when ctx ends. A failed write or fdatasync (disk
// full) fails the appends of that commit, cuts the segment back to its last durable size, counts
// sluice_wal_write_errors_total, and the next commit tries again: the log recovers when space returns.
//
// A Consumer is used by one goroutine; Fetch preads segment files in 1 MiB chunks (the page cache serves
// the tail just written) and decodes records in place, up to MaxBatch per call. Committed and Close
// delete segment files on the calling goroutine. Lock order: none (WAL.qmu guards the queue, WAL.mu the
// segment list and durable end; no path holds both).
//
// No metadata file exists besides the segments: segment names carry the offsets (the last segment is
// never deleted, so offsets continue across restarts), and group offsets live with the consumers. Files
// that must appear whole (a new segment with its header, a moved-aside damaged part) are written to
// <name>.tmp, synced and renamed; Open deletes leftover .tmp files.
//
// # Why by hand
//
// ARCHITECTURE.md asks for a well-kept library. github.com/tidwall/wal (v1.2.1) was evaluated and falls
// short on every point that makes this log safe:
//
//   - No checksums: records are a uvarint length and the data. A torn or zero-filled tail (what a crash
//     leaves after an extending write) either parses as records (zeros read as empty entries) or makes
//     Open fail with ErrCorrupt; there is no repair, and bit rot is returned as data.
//   - No group commit: WriteBatch fsyncs under the log's mutex, so concurrent appenders serialize on
//     their own fsyncs, and Read (RLock) blocks behind every fsync.
//   - A failed write leaves its in-memory buffer and index ahead of the file, so the log is unusable
//     until reopened: no recovery from ENOSPC.
//   - TruncateFront copies the remainder of the segment it cuts into a new file under the lock; reads are
//     one index at a time, loading and caching whole segments in memory, which keeps 64 MiB per segment
//     resident and allocates per read.
//
// prometheus tsdb/wlog, the model followed here (segments, CRC32-C, CorruptionErr, repair), is not
// importable without the rest of Prometheus, and its 32 KiB page framing targets another workload. What
// is left is small: framing and CRC (format.go), recovery (recover.go), the group-committing writer
// (writer.go) and readers (consumer.go).
package wal
