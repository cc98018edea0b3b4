package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// The on-disk format, specified in docs/format/wal.md.
const (
	// segmentHeaderSize is the size of the header that starts every segment file.
	segmentHeaderSize = 16
	// recordHeaderSize is the size of the frame before every record's payload: length, then CRC.
	recordHeaderSize = 8
	// formatVersion is the version written in segment headers.
	formatVersion = 1
	// maxPayload bounds a record's length field whatever the configured segment size: a length
	// above it is corruption, not a record.
	maxPayload = 1<<30 - segmentHeaderSize - recordHeaderSize
	// segmentExt ends every segment file name.
	segmentExt = ".wal"
	// corruptInfix marks a moved-aside damaged remainder: <segment>.corrupt-<byte offset>.
	corruptInfix = ".corrupt-"
	// tmpExt ends files being written before their rename.
	tmpExt = ".tmp"
)

var (
	segmentMagic = [4]byte{'S', 'L', 'W', 'L'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// Reasons a record or segment does not decode; CorruptionErr wraps one of them.
var (
	// ErrCorrupt is the root of every decoding failure: errors.Is(err, ErrCorrupt) tells corruption
	// from I/O errors.
	ErrCorrupt = errors.New("wal: corrupt")

	errChecksum  = fmt.Errorf("%w: record checksum mismatch", ErrCorrupt)
	errLength    = fmt.Errorf("%w: record length runs past the end of the segment", ErrCorrupt)
	errHeader    = fmt.Errorf("%w: bad segment header", ErrCorrupt)
	errOverlap   = fmt.Errorf("%w: segment holds records the next segment starts with", ErrCorrupt)
	errMissing   = fmt.Errorf("%w: records missing between segments", ErrCorrupt)
	errShortRead = errors.New("wal: record continues past the buffer") // not corruption: read more
)

// CorruptionErr is damage found in a segment: which file, at which byte, and why (wrapping ErrCorrupt).
// Open repairs what it finds and logs each CorruptionErr; Fetch returns one if a record read back does
// not match its checksum.
type CorruptionErr struct {
	Segment string // path of the segment file
	Offset  int64  // byte offset of the first damaged byte in Segment
	Err     error
}

func (e *CorruptionErr) Error() string {
	return fmt.Sprintf("wal: corruption in segment %s at byte %d: %v", e.Segment, e.Offset, e.Err)
}

// Unwrap returns the reason.
func (e *CorruptionErr) Unwrap() error { return e.Err }

// segmentName returns the file name of the segment whose first record has offset base.
func segmentName(base int64) string {
	return fmt.Sprintf("%020d%s", base, segmentExt)
}

// parseSegmentName returns the base offset named by a segment file name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// appendSegmentHeader appends the header of the segment starting at offset base.
func appendSegmentHeader(dst []byte, base int64) []byte {
	dst = append(dst, segmentMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	return binary.LittleEndian.AppendUint64(dst, uint64(base))
}

// decodeSegmentHeader checks a segment header and returns the base offset it names.
func decodeSegmentHeader(b []byte) (int64, error) {
	if len(b) < segmentHeaderSize {
		return 0, fmt.Errorf("%w: %d bytes, want %d", errHeader, len(b), segmentHeaderSize)
	}
	if [4]byte(b[:4]) != segmentMagic {
		return 0, fmt.Errorf("%w: magic %q", errHeader, b[:4])
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != formatVersion {
		return 0, fmt.Errorf("%w: version %d, want %d", errHeader, v, formatVersion)
	}
	base := binary.LittleEndian.Uint64(b[8:])
	if base > 1<<62 {
		return 0, fmt.Errorf("%w: base offset %d", errHeader, base)
	}
	return int64(base), nil
}

// appendRecord appends one framed record: length (uint32 LE), CRC32-Castagnoli of the length bytes
// and the payload (uint32 LE), payload.
func appendRecord(dst, payload []byte) []byte {
	n := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, dst[n:n+4])
	crc = crc32.Update(crc, castagnoli, payload)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	return append(dst, payload...)
}

// decodeRecord decodes the record at the start of b, whose length field may not exceed limit (what
// the segment still holds after the frame). It returns the payload (capacity clipped, aliasing b) and
// the record's size on disk. With errShortRead, n is how many bytes the record needs: b holds only
// part of it.
func decodeRecord(b []byte, limit int) (payload []byte, n int, err error) {
	if len(b) < recordHeaderSize {
		return nil, recordHeaderSize, errShortRead
	}
	size := binary.LittleEndian.Uint32(b)
	if int64(size) > int64(min(limit, maxPayload)) {
		return nil, 0, errLength
	}
	n = recordHeaderSize + int(size)
	if len(b) < n {
		return nil, n, errShortRead
	}
	crc := crc32.Update(0, castagnoli, b[:4])
	crc = crc32.Update(crc, castagnoli, b[recordHeaderSize:n])
	if crc != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errChecksum
	}
	return b[recordHeaderSize:n:n], n, nil
}
