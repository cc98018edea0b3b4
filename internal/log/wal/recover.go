package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	// scanChunk is how much of a segment recovery reads at a time.
	scanChunk = 4 << 20
	// resyncBudget bounds the bytes checksummed while looking for a valid record after a bad one;
	// past it, the damage is treated as corruption (moved aside), never as a torn tail (deleted).
	resyncBudget = 256 << 20
)

// scanResult is what a segment's scan found: the intact prefix and, if any, why it ended early.
type scanResult struct {
	count int64 // intact records
	end   int64 // byte position after the last intact record
	index []indexEntry
	bad   error // nil when the whole file is intact
}

// recover opens the log's directory: it lists the segments, verifies every record, repairs what a crash
// or damage left (see doc.go and docs/format/wal.md), rebuilds the in-memory index and opens the last
// segment for writing.
func (l *WAL) recover() error {
	dir := l.cfg.Dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	var bases []int64
	var corrupt []int64 // segments with moved-aside parts: they explain gaps
	for _, e := range ents {
		name := e.Name()
		switch {
		case e.IsDir():
		case strings.HasSuffix(name, tmpExt):
			// A segment or moved-aside remainder whose creation did not finish: never renamed, so never used.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove unfinished %s: %w", name, err)
			}
			l.logger.Info("removed a file whose creation a crash interrupted", "file", name)
		case strings.Contains(name, corruptInfix):
			if base, ok := parseSegmentName(name[:strings.Index(name, corruptInfix)]); ok {
				corrupt = append(corrupt, base)
			}
		default:
			if base, ok := parseSegmentName(name); ok {
				bases = append(bases, base)
			}
		}
	}
	if len(corrupt) > 0 {
		l.logger.Warn("moved-aside damaged segment parts are in the log directory; inspect and delete them",
			"dir", dir, "files", len(corrupt), "pattern", "*"+corruptInfix+"*")
	}
	slices.Sort(bases)

	buf := make([]byte, scanChunk)
	floor := int64(0) // the next offset must not be below this: offsets a damaged part may have used
	for i, base := range bases {
		last := i == len(bases)-1
		limit := int64(-1)
		if !last {
			limit = bases[i+1] - base
		}
		s, cut, err := l.recoverSegment(base, last, limit, &buf, &floor)
		if err != nil {
			return err
		}
		if cut {
			corrupt = append(corrupt, base)
		}
		if s == nil {
			continue
		}
		if n := len(l.segs); n > 0 {
			prev := l.segs[n-1]
			explained := slices.ContainsFunc(corrupt, func(b int64) bool { return b >= prev.base && b < base })
			if prevEnd := prev.base + prev.count; base > prevEnd && !explained {
				cerr := &CorruptionErr{Segment: prev.path, Offset: prev.size,
					Err: fmt.Errorf("%w: offsets %d to %d", errMissing, prevEnd, base-1)}
				l.m.repairs.WithLabelValues("missing").Inc()
				l.logger.Error("records missing between segments; reading skips them",
					"segment", prev.path, "offset", prev.size, "first_missing", prevEnd, "next_present", base, "err", cerr)
			}
		}
		l.segs = append(l.segs, s)
		l.retained += s.size
		floor = max(floor, s.base+s.count)
	}

	// Open the last segment for writing, or start one where the offsets must continue.
	w := &l.w
	if n := len(l.segs); n > 0 && l.segs[n-1].base+l.segs[n-1].count >= floor {
		s := l.segs[n-1]
		f, err := l.open(s.path, os.O_RDWR)
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		w.f, w.active = f, s
	} else {
		s, f, err := l.createSegment(floor)
		if err != nil {
			return err
		}
		w.f, w.active = f, s
		l.segs = append(l.segs, s)
		l.retained += s.size
	}
	w.next = w.active.base + w.active.count
	l.durableNext = w.next
	l.logger.Info("log opened", "dir", dir, "segments", len(l.segs), "first_offset", l.segs[0].base,
		"next_offset", l.durableNext, "retained_bytes", l.retained)
	return nil
}

// recoverSegment verifies one segment and repairs it: a torn tail of the last segment is truncated, any
// other damage is moved aside. It returns nil when nothing of the file is left to use, and cut when
// records were moved aside. floor is raised past every offset a moved-aside part of the last segment
// may have held.
func (l *WAL) recoverSegment(base int64, last bool, limit int64, buf *[]byte, floor *int64) (s *segment, cut bool, err error) {
	path := filepath.Join(l.cfg.Dir, segmentName(base))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("stat segment: %w", err)
	}
	size := st.Size()
	*floor = max(*floor, base)

	hdr := make([]byte, segmentHeaderSize)
	_, rerr := f.ReadAt(hdr, 0)
	hbase, herr := decodeSegmentHeader(hdr)
	switch {
	case size == 0:
		// Holds nothing (segments are created whole through a rename, so only outside damage empties one).
		l.m.repairs.WithLabelValues("empty").Inc()
		l.logger.Warn("removed an empty segment file", "segment", path)
		if err := os.Remove(path); err != nil {
			return nil, false, fmt.Errorf("remove empty segment: %w", err)
		}
		return nil, false, nil
	case rerr != nil && !errors.Is(rerr, io.EOF):
		return nil, false, fmt.Errorf("read segment header: %w", rerr)
	case herr == nil && hbase != base:
		herr = fmt.Errorf("%w: names offset %d, file name %d", errHeader, hbase, base)
		fallthrough
	case herr != nil:
		cerr := &CorruptionErr{Segment: path, Offset: 0, Err: herr}
		if err := l.moveAside(f, path, 0, size, cerr); err != nil {
			return nil, false, err
		}
		if last {
			*floor = max(*floor, base+ceilDiv(size, recordHeaderSize))
		}
		if err := os.Remove(path); err != nil {
			return nil, false, fmt.Errorf("remove damaged segment: %w", err)
		}
		return nil, true, nil
	}

	res, err := scanSegment(f, base, size, limit, buf)
	if err != nil {
		return nil, false, err
	}
	s = &segment{base: base, path: path, size: res.end, count: res.count, index: res.index}
	if res.bad == nil {
		return s, false, nil
	}
	if last && !errors.Is(res.bad, errOverlap) {
		found, err := findRecordAfter(f, res.end, size)
		if err != nil {
			return nil, false, err
		}
		if !found {
			// Torn tail: the end of a write a crash interrupted, never fdatasynced, never acknowledged.
			l.m.repairs.WithLabelValues("torn_tail").Inc()
			l.logger.Warn("truncated a torn tail left by a crash",
				"segment", path, "offset", res.end, "bytes", size-res.end, "records_kept", res.count, "reason", res.bad)
			if err := f.Truncate(res.end); err != nil {
				return nil, false, fmt.Errorf("truncate torn tail: %w", err)
			}
			if err := f.Sync(); err != nil {
				return nil, false, fmt.Errorf("truncate torn tail: %w", err)
			}
			return s, false, nil
		}
	}
	cerr := &CorruptionErr{Segment: path, Offset: res.end, Err: res.bad}
	if err := l.moveAside(f, path, res.end, size, cerr); err != nil {
		return nil, false, err
	}
	if err := f.Truncate(res.end); err != nil {
		return nil, false, fmt.Errorf("truncate damaged segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, false, fmt.Errorf("truncate damaged segment: %w", err)
	}
	if last {
		// Acknowledged records may follow the damage: never hand their offsets out again.
		*floor = max(*floor, base+res.count+ceilDiv(size-res.end, recordHeaderSize))
	}
	return s, true, nil
}

// moveAside copies bytes [from, size) of the segment to <segment>.corrupt-<from> (through a .tmp file
// and a rename) and logs the corruption. The caller then cuts the segment.
func (l *WAL) moveAside(f *os.File, path string, from, size int64, cerr *CorruptionErr) error {
	dst := fmt.Sprintf("%s%s%d", path, corruptInfix, from)
	tmp := dst + tmpExt
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("move damaged part aside: %w", err)
	}
	_, err = io.Copy(out, io.NewSectionReader(f, from, size-from))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err == nil {
		err = syncDir(l.cfg.Dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("move damaged part aside: %w", err)
	}
	l.m.repairs.WithLabelValues("corruption").Inc()
	l.logger.Error("corrupt segment; moved the damaged part aside and continue with what is intact",
		"segment", path, "offset", from, "bytes", size-from, "moved_to", dst, "err", cerr)
	return nil
}

// scanSegment verifies the records of a segment file of size bytes from the header on, reading
// scanChunk bytes at a time. limit caps the records (-1: none): the next segment starts after them.
func scanSegment(f io.ReaderAt, base, size, limit int64, buf *[]byte) (scanResult, error) {
	res := scanResult{end: segmentHeaderSize}
	for res.end < size {
		n := min(int64(len(*buf)), size-res.end)
		if _, err := f.ReadAt((*buf)[:n], res.end); err != nil && !errors.Is(err, io.EOF) {
			return res, fmt.Errorf("read segment: %w", err)
		}
		chunk := (*buf)[:n]
		off := 0
		for off < len(chunk) {
			pos := res.end + int64(off)
			_, rn, err := decodeRecord(chunk[off:], int(min(size-pos-recordHeaderSize, maxPayload)))
			if errors.Is(err, errShortRead) {
				if pos+int64(rn) > size {
					res.bad, res.end = fmt.Errorf("%w: the file ends inside a record header", errLength), pos
					return res, nil
				}
				if off == 0 { // the record is larger than the buffer
					*buf = make([]byte, rn)
				}
				break
			}
			if err == nil && res.count == limit {
				err = errOverlap
			}
			if err != nil {
				res.bad, res.end = err, pos
				return res, nil
			}
			if res.count%indexEvery == 0 {
				res.index = append(res.index, indexEntry{off: base + res.count, pos: pos})
			}
			res.count++
			off += rn
		}
		res.end += int64(off)
	}
	return res, nil
}

// findRecordAfter reports whether any byte position after from, up to size, starts a record whose
// checksum holds: proof that intact (so possibly acknowledged) data follows a bad spot, which is then
// corruption, not a torn tail. Random bytes pass a CRC32 check once in 2^32 tries. It gives up with true
// (the cautious answer) after checksumming resyncBudget bytes.
func findRecordAfter(f io.ReaderAt, from, size int64) (bool, error) {
	buf := make([]byte, min(scanChunk, size-from)+recordHeaderSize)
	budget := int64(resyncBudget)
	for start := from + 1; start+recordHeaderSize <= size; {
		n := min(int64(len(buf)), size-start)
		if _, err := f.ReadAt(buf[:n], start); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("read segment: %w", err)
		}
		chunk := buf[:n]
		for i := 0; i+recordHeaderSize <= len(chunk); i++ {
			pos := start + int64(i)
			length := int64(binary.LittleEndian.Uint32(chunk[i:]))
			if length > size-pos-recordHeaderSize {
				continue
			}
			if budget -= length + 4; budget < 0 {
				return true, nil
			}
			var payload []byte
			if end := int64(i) + recordHeaderSize + length; end <= int64(len(chunk)) {
				payload = chunk[i+recordHeaderSize : end]
			} else {
				payload = make([]byte, length)
				if _, err := f.ReadAt(payload, pos+recordHeaderSize); err != nil && !errors.Is(err, io.EOF) {
					return false, fmt.Errorf("read segment: %w", err)
				}
			}
			crc := crc32.Update(0, castagnoli, chunk[i:i+4])
			if crc32.Update(crc, castagnoli, payload) == binary.LittleEndian.Uint32(chunk[i+4:]) {
				return true, nil
			}
		}
		start += max(n-recordHeaderSize+1, 1)
	}
	return false, nil
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
