package log

import (
	"context"
	"errors"
)

// Errors every engine returns for the same conditions.
var (
	// ErrClosed is returned by calls on a closed log or consumer.
	ErrClosed = errors.New("log closed")
	// ErrTooLarge is returned when one entry exceeds the engine's limit.
	ErrTooLarge = errors.New("log entry too large")
)

// Entry is one entry to append: Value is the encoded envelope. Key chooses the partition on engines that
// have several (Kafka: the sensor or topic); single-partition engines ignore it. Neither is retained
// after Append returns (or, for AppendAsync, after done is called).
type Entry struct {
	Key   []byte
	Value []byte
}

// Record is one entry read back.
type Record struct {
	Partition int32
	Offset    int64
	// Value is valid until the next Fetch on the consumer that returned it.
	Value []byte
}

// Appender is the write side of the log.
type Appender interface {
	// Append appends entries and returns once all are durable (or ctx is done, or the log failed).
	// An error means none, some or all may have been appended: the caller must not acknowledge upstream
	// and may retry (duplicates are removed downstream).
	Append(ctx context.Context, entries ...Entry) error
	// AppendAsync queues entries and calls done exactly once, after all are durable or with the error
	// that stopped them. Calls are durable in the order they were made. done must not block.
	AppendAsync(entries []Entry, done func(error))
}

// LazyAppender is implemented by logs that can make appends nobody waits on promptly (MQTT QoS 0
// messages: no one acknowledges them) durable later than the others, sharing one fsync among more of
// them (package wal: wal.lazy_commit_interval). AppendLazy is AppendAsync otherwise: done is called
// exactly once, in append order with every other append. Callers get it through LazyOf.
type LazyAppender interface {
	AppendLazy(entries []Entry, done func(error))
}

// LazyOf returns a's AppendLazy, or its AppendAsync when a is not a LazyAppender.
func LazyOf(a Appender) func(entries []Entry, done func(error)) {
	if l, ok := a.(LazyAppender); ok {
		return l.AppendLazy
	}
	return a.AppendAsync
}

// Handler is what a consumer tells the log about its own committed state.
type Handler interface {
	// Assigned is called when the consumer is given a partition; it returns the next offset to read
	// (0 for "from the start"). An offset before the first one the log still holds reads from the first
	// one it holds.
	Assigned(ctx context.Context, partition int32) (next int64, err error)
	// Revoked is called before a partition is taken away (rebalance, Close): the consumer flushes and
	// commits its output for it.
	Revoked(ctx context.Context, partition int32) error
}

// Consumer reads the log for one group. It is used by one goroutine.
type Consumer interface {
	// Fetch blocks until at least one record is available on an assigned partition, ctx is done, or
	// the consumer is closed, and returns up to the engine's batch limit of records in offset order per
	// partition. The returned slice and its values are valid until the next Fetch.
	Fetch(ctx context.Context) ([]Record, error)
	// Committed tells the log that this group's output covers every record of partition up to and
	// including offset.
	Committed(partition int32, offset int64)
	// Close calls Revoked for every assigned partition, then releases the consumer. The group's
	// registration (and so what the log retains for it) ends with it.
	Close(ctx context.Context) error
}

// Log is a durable log: an Appender plus consumer groups.
type Log interface {
	Appender
	// Consume registers a consumer group and returns its consumer. Registration is immediate: from
	// this call on, the log keeps every record the group has not committed.
	Consume(group string, h Handler) (Consumer, error)
	// Close stops the log after pending appends are durable. Consumers must be closed first.
	Close() error
}
