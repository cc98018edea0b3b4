// Package delta owns the Delta Lake transaction log of sluice's tables: the protocol's actions as
// JSON, reading a table's log into a snapshot, appending commits with put-if-absent, and classic
// checkpoints. It knows nothing of sluice's rows; package lake writes the data files and decides what
// a commit holds.
//
// Everything here follows the Delta Transaction Log Protocol, PROTOCOL.md in
// github.com/delta-io/delta; section names are cited where they apply:
//
//   - "Delta Log Entries": a commit is _delta_log/NNNNNNNNNNNNNNNNNNNN.json (the version zero-padded
//     to 20 digits), newline-delimited JSON, one action per line (EncodeCommit, ParseCommit).
//   - "Actions": protocol, metaData (with "Format Specification"), add and remove ("Add File and Remove
//     File"), txn ("Transaction Identifiers"), commitInfo ("Commit Provenance Information"). Other
//     actions (cdc, domainMetadata, …) are ignored when read, as "Protocol Evolution" allows.
//   - "Action Reconciliation": Snapshot replays commits in order.
//   - "Schema Serialization Format": StructType, DataType; "Per-file Statistics": Stats;
//     "Partition Value Serialization": FormatDate.
//   - "Requirements for Writers", "Creation of New Log Entries": a commit never overwrites another
//     one; Table.Commit creates the next version with put-if-absent (Store.PutIfAbsent) and, when another
//     writer took it, reads the log and tries the version after.
//   - "Checkpoints", "V1 Spec", "Classic checkpoint", "Checkpoint Schema", "Last Checkpoint File
//     Schema": WriteCheckpoint, DecodeCheckpoint, LastCheckpoint.
//
// sluice's tables use protocol reader version 1, writer version 2 and no table features; Table
// refuses to append to a table that needs more.
//
// # Exactly once
//
// A commit carries a txn action {appId, version}: for sluice, the consumer and the last log offset the
// commit covers. Table.Commit first checks the log for that appId: if the version recorded there is
// the commit's or later, the commit already landed (an earlier attempt whose reply was lost) and is
// not written again. Since versions are created with put-if-absent, two writers never both own one.
//
// # What is durable when a call returns
//
// Table.Create and Table.Commit return nil only after the commit file exists in full, durably (object
// stores acknowledge a put once it is durable; on a local directory the file and its directory are
// fsynced). An error leaves the outcome unknown: the commit may or may not have landed, and calling
// Commit again with the same txn settles it. Checkpoints are an optimisation: a failed one is logged
// and the commit stands.
//
// # Who calls what
//
// A Table and its Snapshot belong to one goroutine (the writer of one table). Update fetches commit
// files with a few goroutines of its own, joined before it returns. Several Tables, in one process or
// many, may write one table at once: that is what put-if-absent arbitrates.
//
// A writer's Table keeps protocol, metadata and txns only (Options.TrackFiles false): the list of
// live files, with their statistics, grows without bound and is needed only for a checkpoint, so
// WriteCheckpoint reads it back from the log (previous checkpoint plus later commits) when one is due.
//
// # Written by hand
//
// No Go library for the Delta log is available to sluice, and the protocol's JSON actions are small.
// BlobStore also writes local files by hand, because fileblob's IfNotExist is not atomic and it never
// fsyncs (see BlobStore). Checkpoints are Parquet, written and read with parquet-go.
package delta
