package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	slog2 "github.com/sluice-project/sluice/internal/log"
)

// indexEvery is the spacing, in records, of a segment's in-memory index entries (offset -> byte position).
const indexEvery = 512

var _ slog2.Log = (*WAL)(nil)

// WAL is the local write-ahead log: a log.Log with one partition (0).
type WAL struct {
	cfg    Config
	logger *slog.Logger
	m      *metrics
	open   fileOpener
	unlock func() error

	// Append side, guarded by qmu.
	qmu        sync.Mutex
	queue      []*request
	pend       pending // what queue holds, for waitInterval without a scan
	closing    bool
	wakeWriter chan struct{} // cap 1: something was queued
	wakeUrgent chan struct{} // cap 1: an append that is not lazy was queued (ends a lazy wait)
	quit       chan struct{} // closed by Close: drain and stop
	done       chan struct{} // closed when the writer has stopped
	closeOnce  sync.Once
	closeErr   error

	// Owned by the writer goroutine (after Open returns).
	w writerState

	// Shared state, guarded by mu: what is durable, what is retained, who reads.
	mu          sync.Mutex
	segs        []*segment // oldest first; the last one is being written
	durableNext int64      // offset after the last durable record
	retained    int64      // bytes in segs
	groups      map[*consumer]int64
	wake        chan struct{} // closed (and replaced) when durableNext moves or the log closes
	closed      bool
	space       chan struct{} // cap 1: retention freed space
}

// segment is one segment file. base, path and the sealed segments' fields never change; size, count and
// index of the last segment are advanced by the writer under WAL.mu.
type segment struct {
	base    int64
	path    string
	size    int64 // durable bytes, header included
	count   int64 // durable records
	index   []indexEntry
	deleted bool // removed by retention (under WAL.mu)
}

type indexEntry struct {
	off int64 // record offset
	pos int64 // byte position in the segment file
}

// request is one Append or AppendAsync call, queued for the writer.
type request struct {
	entries []slog2.Entry
	bytes   int         // framed size of entries
	done    func(error) // AppendAsync, AppendLazy
	lazy    bool        // AppendLazy: lazy_commit_interval applies
	ch      chan error  // Append
	err     error       // failed before queuing (too large): reported in order
	first   int64       // offset of entries[0], set by the writer
	end     int64       // offset after the last entry, set once all are encoded
	taken   bool        // the writer has it (under qmu)
	gone    bool        // Append gave up before the writer took it (under qmu)
	encoded bool        // all entries are in the writer's buffer
}

// pending counts the requests queued and not withdrawn (guarded by qmu): their framed bytes, those
// that are not lazy, and those of them that are asynchronous (AppendAsync). enqueue adds, take and a
// withdrawn Append subtract.
type pending struct {
	bytes, eager, async int
}

func (p *pending) add(r *request, sign int) {
	p.bytes += sign * r.bytes
	if !r.lazy {
		p.eager += sign
		if r.done != nil {
			p.async += sign
		}
	}
}

var requestPool = sync.Pool{New: func() any { return &request{ch: make(chan error, 1)} }}

// Open opens (creating it if needed) the log in cfg.Dir, repairs what a crash left (see doc.go), and
// starts its writer. reg may be nil (no metrics registered); logger may be nil (no logs).
func Open(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*WAL, error) {
	return open(cfg, logger, reg, openOSFile)
}

func open(cfg Config, logger *slog.Logger, reg prometheus.Registerer, opener fileOpener) (*WAL, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	if cfg.Dir == "" {
		return nil, errors.New("wal: dir is empty: set wal.dir (the app sets it to <data_dir>/wal)")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create dir: %w", err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("wal: lock: %w", err)
	}
	l := &WAL{
		cfg: cfg, logger: logger, m: newMetrics(), open: opener, unlock: unlock,
		wakeWriter: make(chan struct{}, 1), wakeUrgent: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		groups: map[*consumer]int64{}, wake: make(chan struct{}), space: make(chan struct{}, 1),
	}
	if err := l.m.register(reg); err != nil {
		unlock()
		return nil, fmt.Errorf("wal: %w", err)
	}
	if err := l.recover(); err != nil {
		l.m.unregister()
		unlock()
		return nil, fmt.Errorf("wal: open %s: %w", cfg.Dir, err)
	}
	l.updateGauges()
	go l.run()
	return l, nil
}

// Append implements log.Appender: it returns once every entry is durable (written and fdatasynced).
// If ctx ends while the entries still wait in the queue (backpressure), they are withdrawn and ctx's
// error returned; once the writer has taken them, Append waits for their commit.
func (l *WAL) Append(ctx context.Context, entries ...slog2.Entry) error {
	_, err := l.append(ctx, entries)
	return err
}

// append is Append that also returns the offset of the first entry.
func (l *WAL) append(ctx context.Context, entries []slog2.Entry) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	size, err := l.framedSize(entries)
	if err != nil {
		return 0, err
	}
	r := requestPool.Get().(*request)
	r.entries, r.bytes = entries, size
	if err := l.enqueue(r); err != nil {
		l.recycle(r)
		return 0, err
	}
	select {
	case err := <-r.ch:
		first := r.first
		l.recycle(r)
		return first, err
	case <-ctx.Done():
	}
	l.qmu.Lock()
	if !r.taken {
		r.gone = true // the writer skips it; it is not recycled
		l.pend.add(r, -1)
		l.qmu.Unlock()
		return 0, fmt.Errorf("wal: append: %w", ctx.Err())
	}
	l.qmu.Unlock()
	err = <-r.ch // already being written: its outcome is near
	first := r.first
	l.recycle(r)
	return first, err
}

func (l *WAL) recycle(r *request) {
	*r = request{ch: r.ch}
	requestPool.Put(r)
}

// AppendAsync implements log.Appender. done runs on the writer goroutine, in call order, once the
// entries are durable or failed. After Close it runs at once, on the caller's goroutine, with
// log.ErrClosed.
func (l *WAL) AppendAsync(entries []slog2.Entry, done func(error)) {
	l.appendAsync(entries, done, false)
}

// AppendLazy is AppendAsync for entries whose durability nobody waits on promptly (see
// log.LazyAppender): while only such appends are queued, the group commit waits for
// lazy_commit_interval.
func (l *WAL) AppendLazy(entries []slog2.Entry, done func(error)) {
	l.appendAsync(entries, done, true)
}

func (l *WAL) appendAsync(entries []slog2.Entry, done func(error), lazy bool) {
	size, err := l.framedSize(entries)
	r := &request{entries: entries, bytes: size, done: done, lazy: lazy, err: err}
	if err := l.enqueue(r); err != nil {
		done(err)
	}
}

func (l *WAL) framedSize(entries []slog2.Entry) (int, error) {
	size := 0
	for _, e := range entries {
		if len(e.Value) > l.cfg.maxEntry() {
			return 0, fmt.Errorf("wal: entry of %d bytes exceeds the %d a segment holds (wal.segment_size): %w",
				len(e.Value), l.cfg.maxEntry(), slog2.ErrTooLarge)
		}
		size += recordHeaderSize + len(e.Value)
	}
	return size, nil
}

func (l *WAL) enqueue(r *request) error {
	l.qmu.Lock()
	if l.closing {
		l.qmu.Unlock()
		return slog2.ErrClosed
	}
	l.queue = append(l.queue, r)
	l.pend.add(r, 1)
	l.qmu.Unlock()
	select {
	case l.wakeWriter <- struct{}{}:
	default:
	}
	if !r.lazy {
		select {
		case l.wakeUrgent <- struct{}{}:
		default:
		}
	}
	return nil
}

// Close stops taking appends, makes every queued append durable (past max_size if need be: Close does
// not wait for consumers), closes the files and releases the directory. Consumers should be closed
// first; their Fetch returns log.ErrClosed from now on. Close is idempotent.
func (l *WAL) Close() error {
	l.closeOnce.Do(func() {
		l.qmu.Lock()
		l.closing = true
		l.qmu.Unlock()
		close(l.quit)
		<-l.done
		l.mu.Lock()
		l.closed = true
		wake := l.wake
		l.mu.Unlock()
		close(wake)
		if err := l.unlock(); err != nil && l.closeErr == nil {
			l.closeErr = fmt.Errorf("wal: unlock: %w", err)
		}
		l.m.unregister()
	})
	return l.closeErr
}

// Consume implements log.Log. The group holds every record from now until it commits.
func (l *WAL) Consume(group string, h slog2.Handler) (slog2.Consumer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, slog2.ErrClosed
	}
	c := &consumer{l: l, h: h, group: group}
	l.groups[c] = -1
	return c, nil
}

// committed records that c's group has committed offset and deletes the segments no group needs.
func (l *WAL) committed(c *consumer, offset int64) {
	l.mu.Lock()
	cur, ok := l.groups[c]
	if !ok || offset <= cur || l.closed {
		l.mu.Unlock()
		return
	}
	l.groups[c] = offset
	dead := l.collectLocked()
	l.mu.Unlock()
	l.remove(dead)
}

// unregister ends c's registration.
func (l *WAL) unregister(c *consumer) {
	l.mu.Lock()
	delete(l.groups, c)
	var dead []*segment
	if !l.closed { // the directory is no longer ours
		dead = l.collectLocked()
	}
	l.mu.Unlock()
	l.remove(dead)
}

// collectLocked takes out of l.segs every segment, but the one being written, whose records every
// registered group has committed. With no group registered, or one that has not committed, none.
func (l *WAL) collectLocked() []*segment {
	if len(l.groups) == 0 {
		return nil
	}
	low := int64(math.MaxInt64)
	for _, off := range l.groups {
		low = min(low, off)
	}
	var dead []*segment
	for len(l.segs) > 1 && low >= 0 {
		s := l.segs[0]
		if s.base+s.count > low+1 {
			break
		}
		s.deleted = true
		l.retained -= s.size
		dead = append(dead, s)
		l.segs[0] = nil
		l.segs = l.segs[1:]
	}
	return dead
}

// remove deletes the files of dead segments and wakes a writer waiting for space.
func (l *WAL) remove(dead []*segment) {
	if len(dead) == 0 {
		return
	}
	for _, s := range dead {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.logger.Error("delete committed segment", "segment", s.path, "err", err)
			continue
		}
		l.logger.Debug("deleted committed segment", "segment", s.path, "records", s.count, "bytes", s.size)
	}
	l.updateGauges()
	select {
	case l.space <- struct{}{}:
	default:
	}
}

func (l *WAL) updateGauges() {
	l.mu.Lock()
	retained, segs, next := l.retained, len(l.segs), l.durableNext
	l.mu.Unlock()
	l.m.retainedBytes.Set(float64(retained))
	l.m.retainedSegs.Set(float64(segs))
	l.m.nextOffset.Set(float64(next))
}

// locateLocked returns the segment holding durable offset off, or the first one after it (off is then
// in a gap or before the first retained record), or nil when off is not durable yet.
func (l *WAL) locateLocked(off int64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base+l.segs[i].count > off })
	if i == len(l.segs) {
		return nil
	}
	return l.segs[i]
}

// seek returns the indexed position at or before off in s: the offset and byte position to scan from.
func (s *segment) seek(off int64) indexEntry {
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].off > off })
	if i == 0 {
		return indexEntry{off: s.base, pos: segmentHeaderSize}
	}
	return s.index[i-1]
}
