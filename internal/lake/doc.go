// Package lake owns sluice's output: Delta Lake tables of Parquet files in a gocloud.dev/blob bucket
// (file://, mem://, s3://, gs://, azblob://). It decides how rows become files (partitions, order,
// encodings, statistics) and what one commit holds; package lake/delta owns the transaction log
// itself. docs/format/lake.md is the on-disk format.
//
// # Tables
//
// A Spec names a table and says how its rows (a Go struct with parquet tags: the file schema) are
// partitioned and ordered; the Delta schema is derived from the file schema plus the partition
// columns. readings/ buffers its rows compactly, as Readings (40 bytes: a pointer to the Series they
// share, time, value and ids), and its Writer converts them to ReadingRows (104 bytes) a chunk at a
// time as it writes a file. RawSpec (raw/, by received hour), ReadingsSpec (readings/, by event day, sorted by
// sensor_id, metric, ts), QuarantineSpec (quarantine/, by received day) and SensorsSpec (sensors/).
//
// # Memory
//
// A Writer holds the rows of its next commit. A stage that calls Spool (the archiver, past
// lake.row_group_bytes) has them encoded as compressed row groups of files built in memory instead,
// so a commit of a million raw/ messages costs about 9 MiB rather than 250; see spool.go. readings/
// files are sorted as a whole, so its rows stay buffered, as Readings: 40 MB a million.
//
// # Exactly once
//
// Writer.Commit writes the buffered rows as new, uniquely named files (one per partition), then one
// Delta commit naming them with a txn action {appId, version}: for sluice, the consumer and the last
// log offset the rows cover. Until that commit exists the files are not part of the table (readers
// take the file list from the log, never from a listing), so a crash between the two leaves nothing
// visible. A commit is created with put-if-absent: when another writer took the version, the log is
// read and the next version tried. Before writing anything, and after every conflict, the log is
// checked for the txn: if it is there (an earlier attempt landed though its caller saw an error),
// the rows are dropped instead of committed twice. On any other error the rows stay buffered, and the
// files already written are reused when Commit is called again with the same rows.
//
// # What is durable when a call returns
//
// When Commit returns a version, the data files and the commit are durable: object stores acknowledge
// durable puts; a local directory's files are fsynced, and their directories, before the commit is
// created (see delta.BlobStore for why local writes bypass fileblob there). NewWriter returns with the
// table created (version 0: protocol and metaData) or found compatible. Add and Buffered only touch
// memory.
//
// # Who calls what
//
// A Writer belongs to one goroutine (a pipeline stage): Add, Buffered, TxnVersion and Commit are not
// safe for concurrent use. Several Writers may append to one table at once, in one process or many
// (scale-out), each with its own appIds. A Lake may be shared by any number of Writers. Close the
// Lake after its Writers are done.
//
// # Written by hand, and why
//
// The order of rows in a file: rows arrive in time order, and sorting a million of them by
// (sensor_id, metric, ts) with a comparison sort took half of a commit's time; a counting sort on
// (partition, sensor, metric) followed by a linear check of each group does it in linear time (see
// order.go). Per-file Delta statistics are read from the Parquet footer parquet-go writes, not
// recomputed. Everything else is a library: parquet-go writes the files, gocloud.dev/blob stores them.
package lake
