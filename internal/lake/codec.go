package lake

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdCodec is the zstd Parquet codec of one table writer. parquet-go's own keeps a pool of
// encoders with zstd's default 8 MiB window, and a pool refills after every garbage collection, so
// commits kept allocating 8 MiB histories (24 MiB live in a heap profile of sluice at 100,000
// sensors). Each page is compressed alone, so a window of one page loses next to nothing
// (zstdWindow). The codec keeps the encoders it made and makes one more only when every one is
// busy: a writer's files are written by one goroutine at a time, but a file of several row groups
// is encoded on up to GOMAXPROCS goroutines at once (writeGroups), which a single encoder would
// take in turn (BenchmarkWriteGroups, 2 cores, 1M readings/ rows: 2 workers 3.1-3.2M rows/s with
// one encoder, 4.2-4.9M with one per worker; one worker 2.1-2.5M either way).
type zstdCodec struct {
	level zstd.EncoderLevel

	mu   sync.Mutex
	idle []*zstd.Encoder // made and not in use

	decOnce sync.Once
	dec     *zstd.Decoder
	decErr  error
}

// zstdWindow bounds what an encoder remembers: pages are compressed one by one and are about
// pageBytes long, so matches reach at most that far back. One page rather than two: the same bytes a
// row (BenchmarkCommitReadings 5.803, BenchmarkCommitRaw 10.20, level auto, either way) and 1.04 MiB
// less held by each encoder (3.70 instead of 4.70 MiB at the default level, 2.61 instead of 3.65 at
// the fastest, after four 1 MiB pages); a sluice at 100,000 sensors held about 11 MiB of histories.
const zstdWindow = pageBytes

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode implements compress.Codec; it is safe for concurrent use: each call takes an idle
// encoder, or makes one.
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	enc, err := c.encoder()
	if err != nil {
		return dst[:0], err
	}
	dst = enc.EncodeAll(src, dst[:0])
	c.mu.Lock()
	c.idle = append(c.idle, enc)
	c.mu.Unlock()
	return dst, nil
}

// encoder returns an idle encoder, or a new one when all are in use.
func (c *zstdCodec) encoder() (*zstd.Encoder, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		enc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return enc, nil
	}
	c.mu.Unlock()
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(c.level), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return enc, nil
}

// Decode implements compress.Codec (the writer never calls it; readers pick their codec from the
// file).
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	c.decOnce.Do(func() {
		c.dec, c.decErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	})
	if c.decErr != nil {
		return dst[:0], fmt.Errorf("zstd decoder: %w", c.decErr)
	}
	return c.dec.DecodeAll(src, dst[:0])
}
