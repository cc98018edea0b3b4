package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

const (
	// MaxBatch is the most records one Fetch returns.
	MaxBatch = 4096
	// readChunk is how many bytes a consumer reads from a segment file at a time (more when one record
	// is larger).
	readChunk = 1 << 20
)

// consumer reads the log for one group, straight from the segment files (the page cache serves the
// recent tail): one pread per readChunk bytes, records decoded in place.
type consumer struct {
	l     *WAL
	h     slog2.Handler
	group string

	assigned bool
	closed   bool
	next     int64 // offset of the next record to return

	seg    *segment // segment being read; nil: locate next
	f      *os.File // seg's file
	cur    int64    // offset of the record at buf[off]
	buf    []byte   // bytes [bufPos, bufPos+len(buf)) of seg
	bufPos int64
	off    int
	recs   []slog2.Record
}

// Fetch implements log.Consumer: it returns up to MaxBatch durable records in offset order, blocking
// until there is at least one. Values alias the consumer's read buffer until the next Fetch.
func (c *consumer) Fetch(ctx context.Context) ([]slog2.Record, error) {
	if c.closed {
		return nil, slog2.ErrClosed
	}
	if !c.assigned {
		next, err := c.h.Assigned(ctx, 0)
		if err != nil {
			return nil, err
		}
		c.assigned, c.next = true, max(next, 0)
	}
	c.recs = c.recs[:0]
	for {
		if err := c.decode(); err != nil {
			return nil, err
		}
		if len(c.recs) > 0 {
			return c.recs, nil
		}
		wait, err := c.advance()
		if err != nil {
			return nil, err
		}
		if wait != nil {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-wait:
			}
		}
	}
}

// decode appends the whole records left in the buffer (from c.next on) to c.recs.
func (c *consumer) decode() error {
	for len(c.recs) < MaxBatch && c.off < len(c.buf) {
		payload, n, err := decodeRecord(c.buf[c.off:], len(c.buf)-c.off-recordHeaderSize)
		if errors.Is(err, errShortRead) || errors.Is(err, errLength) {
			return nil // continues past the buffer: advance reads on from here
		}
		if err != nil {
			return &CorruptionErr{Segment: c.seg.path, Offset: c.bufPos + int64(c.off), Err: err}
		}
		if c.cur >= c.next {
			c.recs = append(c.recs, slog2.Record{Offset: c.cur, Value: payload})
			c.next = c.cur + 1
		}
		c.cur++
		c.off += n
	}
	return nil
}

// advance positions the consumer on the durable bytes that follow what it decoded and reads them into
// its buffer. It returns a channel to wait on when nothing durable follows yet.
func (c *consumer) advance() (<-chan struct{}, error) {
	l := c.l
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, slog2.ErrClosed
	}
	if c.seg != nil && (c.seg.deleted || c.next < l.segs[0].base) {
		c.seg = nil
	}
	if c.seg == nil {
		s := l.locateLocked(c.next)
		if s == nil {
			wake := l.wake
			l.mu.Unlock()
			return wake, nil
		}
		c.next = max(c.next, s.base)
		at := s.seek(c.next)
		c.setSegment(s, at.off, at.pos)
	}
	pos := c.bufPos + int64(c.off)
	limit := c.seg.size
	if pos >= limit {
		// Read to the durable end: wait at the last segment; after a sealed one, go on to the next
		// holding records, past any gap.
		next := l.locateLocked(c.seg.base + c.seg.count)
		if c.seg == l.segs[len(l.segs)-1] || next == nil {
			wake := l.wake
			l.mu.Unlock()
			return wake, nil
		}
		l.mu.Unlock()
		c.next = max(c.next, next.base)
		c.setSegment(next, next.base, segmentHeaderSize)
		return nil, nil
	}
	s := c.seg
	l.mu.Unlock()
	if limit-pos < recordHeaderSize {
		return nil, &CorruptionErr{Segment: s.path, Offset: pos, Err: errLength}
	}

	if c.f == nil {
		f, err := os.Open(s.path)
		if errors.Is(err, os.ErrNotExist) {
			l.mu.Lock()
			deleted := s.deleted
			l.mu.Unlock()
			if deleted { // by retention, since it was located: locate again
				c.seg = nil
				return nil, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("wal: fetch: %w", err)
		}
		c.f = f
	}
	n := min(int64(cap(c.buf)), limit-pos)
	if n < recordHeaderSize { // only at the first read: cap(c.buf) is 0
		n = min(readChunk, limit-pos)
	}
	if err := c.read(pos, n); err != nil {
		return nil, err
	}
	if len(c.buf) >= recordHeaderSize {
		// A record larger than the buffer: read it whole.
		if need := recordHeaderSize + int64(binary.LittleEndian.Uint32(c.buf)); need > int64(len(c.buf)) {
			if pos+need > limit {
				return nil, &CorruptionErr{Segment: s.path, Offset: pos, Err: errLength}
			}
			if err := c.read(pos, need); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

func (c *consumer) setSegment(s *segment, cur, pos int64) {
	if c.seg != s && c.f != nil {
		c.f.Close()
		c.f = nil
	}
	c.seg, c.cur, c.bufPos, c.buf, c.off = s, cur, pos, c.buf[:0], 0
}

// read fills the buffer with n bytes of the segment from pos.
func (c *consumer) read(pos, n int64) error {
	if int64(cap(c.buf)) < n {
		c.buf = make([]byte, max(n, readChunk))
	}
	c.buf = c.buf[:n]
	if _, err := c.f.ReadAt(c.buf, pos); err != nil && !(errors.Is(err, io.EOF)) {
		return fmt.Errorf("wal: fetch: read %s: %w", c.seg.path, err)
	}
	c.bufPos, c.off = pos, 0
	return nil
}

// Committed implements log.Consumer: segments whose records every group has committed are deleted.
func (c *consumer) Committed(partition int32, offset int64) {
	if c.closed || partition != 0 {
		return
	}
	c.l.committed(c, offset)
}

// Close implements log.Consumer: Revoked (when assigned), then the group's registration ends.
func (c *consumer) Close(ctx context.Context) error {
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.assigned {
		err = c.h.Revoked(ctx, 0)
	}
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	c.l.unregister(c)
	return err
}
