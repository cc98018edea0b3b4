package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// writerState is owned by the writer goroutine (and by recover, before it starts).
type writerState struct {
	f       segmentFile // the segment being written
	active  *segment
	next    int64 // offset of the next record encoded
	buf     []byte
	idx     []indexEntry // index entries of the records in buf
	pending int64        // records in buf
	batch   []*request
	dirty   bool        // the file may hold bytes past active.size: truncate before writing
	failing int         // consecutive failed commits
	full    bool        // held back by max_size
	started time.Time   // when the last group commit took its batch (for commit_interval)
	timer   *time.Timer // waitInterval's
}

// run is the writer goroutine: it takes everything queued, writes it with one write and one fdatasync
// (group commit), and completes the requests in order. It stops after Close once the queue is empty.
func (l *WAL) run() {
	defer close(l.done)
	for {
		select {
		case <-l.wakeWriter:
		case <-l.quit:
		}
		for l.commitOnce() {
		}
		select {
		case <-l.quit:
			l.qmu.Lock()
			empty := len(l.queue) == 0
			l.qmu.Unlock()
			if empty {
				l.closeErr = l.finish()
				return
			}
		default:
		}
	}
}

// finish closes the segment being written.
func (l *WAL) finish() error {
	w := &l.w
	var err error
	if !l.cfg.Fsync {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: close segment %s: %w", w.active.path, err)
	}
	return nil
}

// commitOnce waits for space, takes the queued requests (up to max_batch_bytes) and commits them. It
// reports whether there was anything to take.
func (l *WAL) commitOnce() bool {
	l.waitForSpace()
	l.waitInterval()
	batch := l.take()
	if len(batch) == 0 {
		return false
	}
	if l.cfg.CommitInterval > 0 || l.cfg.LazyCommitInterval > 0 {
		l.w.started = time.Now()
	}
	err := l.commit(batch)
	if err != nil {
		l.commitFailed(err)
	}
	l.complete(batch, err)
	clear(batch)
	l.w.batch = batch[:0]
	// The appenders just woken sit in this P's run queue: let them queue their next append before the
	// next batch is taken, or synchronous appenders split into two groups that alternate, each
	// waiting a whole commit for the other's fdatasync (half the records per fdatasync).
	runtime.Gosched()
	return true
}

// waitInterval holds the next group commit back until commit_interval has passed since the last one
// took its batch, so that appends arriving meanwhile share one fdatasync; while every queued append is
// lazy (AppendLazy), until lazy_commit_interval has, and an append that is not cuts that wait short
// (lazy appends do not wake the waiting writer: at tens of thousands a second, the wake-ups cost
// more than the fdatasyncs the wait saves). What is queued is counted as it is queued and taken
// (pending), so the wait is decided without a pass over the queue.
// It does not wait when the last commit is that long ago (an append after a pause is committed at
// once), when max_batch_bytes are already queued, or once Close was called; commit_interval does not
// hold back a queue of synchronous appends only (Append: each caller appends again only once its
// commit is done, so waiting would slow it, not batch it; 64 of them did 117k records/s without the
// interval, 22k with it, in BenchmarkAppend).
func (l *WAL) waitInterval() {
	w := &l.w
	if w.started.IsZero() {
		return
	}
	for {
		q, lazy, async := l.queued()
		if q == 0 || q >= int(l.cfg.MaxBatchBytes) {
			return // nothing to wait for (the writer waits for an append instead), or a full batch
		}
		interval := l.cfg.CommitInterval
		if !async {
			interval = 0
		}
		if lazy {
			interval = max(interval, l.cfg.LazyCommitInterval)
		}
		wait := interval - time.Since(w.started)
		if wait <= 0 {
			return
		}
		if w.timer == nil {
			w.timer = time.NewTimer(wait)
		} else {
			w.timer.Reset(wait)
		}
		select {
		case <-w.timer.C:
			return
		case <-l.quit:
			w.timer.Stop()
			return
		case <-l.wakeUrgent: // an append that is not lazy: the wait is commit_interval's
			w.timer.Stop()
		}
	}
}

// queued returns the bytes of the requests queued for the writer, whether all of them are lazy, and
// whether one that is not lazy is asynchronous (AppendAsync: commit_interval applies).
func (l *WAL) queued() (bytes int, lazy, async bool) {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return l.pend.bytes, l.pend.eager == 0, l.pend.async > 0
}

// waitForSpace blocks while the log holds max_size bytes, until retention frees space or Close asks
// to drain (Close writes what is queued whatever the size).
func (l *WAL) waitForSpace() {
	if l.cfg.MaxSize == 0 {
		return
	}
	for {
		l.mu.Lock()
		retained := l.retained
		l.mu.Unlock()
		if retained < int64(l.cfg.MaxSize) {
			if l.w.full {
				l.w.full = false
				l.m.backpressure.Set(0)
				l.logger.Info("space freed, appends resume", "retained_bytes", retained)
			}
			return
		}
		if !l.w.full {
			l.w.full = true
			l.m.backpressure.Set(1)
			l.logger.Warn("log full, appends wait until every consumer group commits and a segment can be deleted",
				"retained_bytes", retained, "max_size", l.cfg.MaxSize.String(), "groups", l.groupPositions())
		}
		select {
		case <-l.space:
		case <-l.quit:
			return
		}
	}
}

// groupPositions describes each registered group's committed offset, for the backpressure log line.
func (l *WAL) groupPositions() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.groups))
	for c, off := range l.groups {
		if cur, ok := out[c.group]; !ok || off < cur {
			out[c.group] = off
		}
	}
	return out
}

// take removes from the queue the requests of one group commit: all of them, or as many as fit in
// max_batch_bytes (at least one).
func (l *WAL) take() []*request {
	batch := l.w.batch[:0]
	l.qmu.Lock()
	defer l.qmu.Unlock()
	size, n := 0, 0
	for _, r := range l.queue {
		if size >= int(l.cfg.MaxBatchBytes) {
			break
		}
		n++
		if r.gone {
			continue
		}
		r.taken = true
		size += r.bytes
		l.pend.add(r, -1)
		batch = append(batch, r)
	}
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	return batch
}

// commit encodes batch into the writer's buffer and makes it durable: one write and one fdatasync,
// unless the batch fills a segment (then the full segment is flushed before the next is created) or
// a single request exceeds max_batch_bytes (flushed in parts of that size).
func (l *WAL) commit(batch []*request) error {
	w := &l.w
	if w.dirty {
		if err := l.rollback(); err != nil {
			return err
		}
	}
	for _, r := range batch {
		if r.err != nil {
			continue
		}
		r.first = w.next
		for _, e := range r.entries {
			need := int64(recordHeaderSize + len(e.Value))
			if w.active.size+int64(len(w.buf))+need > int64(l.cfg.SegmentSize) && w.active.count+w.pending > 0 {
				if err := l.flush(); err != nil {
					return err
				}
				if err := l.rotate(); err != nil {
					return err
				}
			}
			if (w.next-w.active.base)%indexEvery == 0 {
				w.idx = append(w.idx, indexEntry{off: w.next, pos: w.active.size + int64(len(w.buf))})
			}
			w.buf = appendRecord(w.buf, e.Value)
			w.next++
			w.pending++
			if len(w.buf) >= int(l.cfg.MaxBatchBytes) {
				if err := l.flush(); err != nil {
					return err
				}
			}
		}
		r.end, r.encoded = w.next, true
	}
	return l.flush()
}

// flush writes the buffer at the end of the active segment, fdatasyncs it, and publishes the records
// as durable. On failure it cuts the file back to its last durable size and drops the buffer.
func (l *WAL) flush() error {
	w := &l.w
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.WriteAt(w.buf, w.active.size)
	if err == nil && l.cfg.Fsync {
		start := time.Now()
		err = w.f.Sync()
		l.m.fsyncSeconds.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return l.writeFailed(fmt.Errorf("wal: write %d records to %s: %w", w.pending, filepath.Base(w.active.path), err))
	}
	n := int64(len(w.buf))
	l.mu.Lock()
	w.active.size += n
	w.active.count += w.pending
	w.active.index = append(w.active.index, w.idx...)
	l.durableNext = w.next
	l.retained += n
	wake := l.wake
	l.wake = make(chan struct{})
	l.mu.Unlock()
	close(wake)

	l.m.appendedRecords.Add(float64(w.pending))
	l.m.appendedBytes.Add(float64(n))
	l.m.recordsPerFsync.Observe(float64(w.pending))
	l.updateGauges()
	if w.failing > 0 {
		l.logger.Info("writes succeed again", "failed_commits", w.failing)
		w.failing = 0
	}
	w.buf, w.idx, w.pending = w.buf[:0], w.idx[:0], 0
	return nil
}

// commitFailed counts and logs a failed group commit (the first of a run of failures).
func (l *WAL) commitFailed(err error) {
	w := &l.w
	l.m.writeErrors.Inc()
	w.failing++
	if w.failing == 1 {
		l.logger.Error("write failed; the appends of this commit failed and were not acknowledged, later appends retry",
			"segment", w.active.path, "durable_bytes", w.active.size, "err", err)
	}
}

// writeFailed handles a failed write or fdatasync: nothing past the last durable size may stay in the
// file (a half-written record would be taken for a torn tail, or worse, a later write would land after
// it), so it is truncated away; if even that fails, the next commit retries it first.
func (l *WAL) writeFailed(err error) error {
	w := &l.w
	w.next -= w.pending
	w.buf, w.idx, w.pending = w.buf[:0], w.idx[:0], 0
	if rerr := l.rollback(); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// rollback truncates the active segment to its durable size.
func (l *WAL) rollback() error {
	w := &l.w
	err := w.f.Truncate(w.active.size)
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.dirty = true
		return fmt.Errorf("wal: truncate %s back to %d bytes: %w", filepath.Base(w.active.path), w.active.size, err)
	}
	w.dirty = false
	return nil
}

// rotate starts a new segment at the next offset. The old one is complete and durable.
func (l *WAL) rotate() error {
	w := &l.w
	s, f, err := l.createSegment(w.next)
	if err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		l.logger.Warn("close sealed segment", "segment", w.active.path, "err", err)
	}
	w.f, w.active = f, s
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.retained += s.size
	l.mu.Unlock()
	l.updateGauges()
	return nil
}

// createSegment creates the segment file for base atomically: header written to <name>.tmp and
// fdatasynced, renamed, directory synced. A segment file therefore always starts with a whole header.
// The file returned reports errors under the segment's path (renamedFile).
func (l *WAL) createSegment(base int64) (*segment, segmentFile, error) {
	path := filepath.Join(l.cfg.Dir, segmentName(base))
	tmp := path + tmpExt
	f, err := l.open(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: create segment %s: %w", filepath.Base(path), err)
	}
	_, err = f.WriteAt(appendSegmentHeader(nil, base), 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(l.cfg.Dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, nil, fmt.Errorf("wal: create segment %s: %w", filepath.Base(path), err)
	}
	return &segment{base: base, path: path, size: segmentHeaderSize}, renamedFile{f, tmp, path}, nil
}

// complete reports each request's outcome in queue order: nil when all its entries are durable, else
// the error (its own, or the commit's).
func (l *WAL) complete(batch []*request, err error) {
	l.mu.Lock()
	durable := l.durableNext
	l.mu.Unlock()
	for _, r := range batch {
		var rerr error
		switch {
		case r.err != nil:
			rerr = r.err
		case err != nil && !(r.encoded && r.end <= durable):
			rerr = err
		}
		if r.done != nil {
			r.done(rerr)
		} else {
			r.ch <- rerr // r belongs to its Append from here on
		}
	}
}
