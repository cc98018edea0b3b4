// Package memlog is the in-memory log engine: the log contract (package log) without durability across
// processes. It serves tests of consumers and sources, and runs where nothing must survive a restart.
// Durable means "in this process's memory" here; everything else in the contract holds.
package memlog

import (
	"context"
	"sync"

	slog "github.com/sluice-project/sluice/internal/log"
)

// MaxBatch is the most records one Fetch returns.
const MaxBatch = 4096

// Log is an in-memory, single-partition log.
type Log struct {
	mu     sync.Mutex
	first  int64    // offset of values[0]
	values [][]byte // retained records
	wake   chan struct{}
	groups map[*consumer]int64 // group -> committed offset (-1: none yet)
	closed bool
}

// New returns an empty log.
func New() *Log {
	return &Log{wake: make(chan struct{}), groups: map[*consumer]int64{}}
}

// Append implements log.Appender.
func (l *Log) Append(ctx context.Context, entries ...slog.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.append(entries)
}

// AppendAsync implements log.Appender.
func (l *Log) AppendAsync(entries []slog.Entry, done func(error)) {
	done(l.append(entries))
}

func (l *Log) append(entries []slog.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return slog.ErrClosed
	}
	for _, e := range entries {
		l.values = append(l.values, append([]byte(nil), e.Value...))
	}
	close(l.wake)
	l.wake = make(chan struct{})
	return nil
}

// Next returns the offset the next appended entry will get.
func (l *Log) Next() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first + int64(len(l.values))
}

// First returns the oldest offset still held.
func (l *Log) First() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// Consume implements log.Log.
func (l *Log) Consume(group string, h slog.Handler) (slog.Consumer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, slog.ErrClosed
	}
	c := &consumer{l: l, h: h, group: group}
	l.groups[c] = -1
	return c, nil
}

// Close implements log.Log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.wake)
	}
	return nil
}

// release drops records every group has committed.
func (l *Log) release() {
	min := int64(-1)
	for _, off := range l.groups {
		if off < 0 {
			return
		}
		if min < 0 || off < min {
			min = off
		}
	}
	if min < 0 {
		return
	}
	n := min + 1 - l.first
	if n <= 0 {
		return
	}
	if n > int64(len(l.values)) {
		n = int64(len(l.values))
	}
	l.values = append([][]byte(nil), l.values[n:]...)
	l.first += n
}

type consumer struct {
	l        *Log
	h        slog.Handler
	group    string
	assigned bool
	next     int64
	buf      []slog.Record
	closed   bool
}

func (c *consumer) Fetch(ctx context.Context) ([]slog.Record, error) {
	if c.closed {
		return nil, slog.ErrClosed
	}
	if !c.assigned {
		next, err := c.h.Assigned(ctx, 0)
		if err != nil {
			return nil, err
		}
		c.assigned, c.next = true, next
	}
	for {
		c.l.mu.Lock()
		if c.next < c.l.first {
			c.next = c.l.first
		}
		end := c.l.first + int64(len(c.l.values))
		if c.next < end {
			n := min(end-c.next, MaxBatch)
			c.buf = c.buf[:0]
			for i := int64(0); i < n; i++ {
				off := c.next + i
				c.buf = append(c.buf, slog.Record{Offset: off, Value: c.l.values[off-c.l.first]})
			}
			c.next += n
			c.l.mu.Unlock()
			return c.buf, nil
		}
		closed, wake := c.l.closed, c.l.wake
		c.l.mu.Unlock()
		if closed {
			return nil, slog.ErrClosed
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

func (c *consumer) Committed(partition int32, offset int64) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if cur, ok := c.l.groups[c]; ok && offset > cur {
		c.l.groups[c] = offset
		c.l.release()
	}
}

func (c *consumer) Close(ctx context.Context) error {
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.assigned {
		err = c.h.Revoked(ctx, 0)
	}
	c.l.mu.Lock()
	delete(c.l.groups, c)
	c.l.mu.Unlock()
	return err
}
