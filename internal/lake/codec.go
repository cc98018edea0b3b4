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
// sensors). Pages are at most about pageBytes, so a window of twice that loses nothing; one encoder
// per writer suffices because a writer's files are written by one goroutine at a time.
type zstdCodec struct {
	level zstd.EncoderLevel

	encOnce sync.Once
	enc     *zstd.Encoder
	encErr  error
	decOnce sync.Once
	dec     *zstd.Decoder
	decErr  error
}

// zstdWindow bounds what an encoder remembers: pages are compressed one by one and are about
// pageBytes long.
const zstdWindow = 2 * pageBytes

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode implements compress.Codec; it is safe for concurrent use (the encoder's EncodeAll is).
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	c.encOnce.Do(func() {
		c.enc, c.encErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(c.level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true),
			zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false))
	})
	if c.encErr != nil {
		return dst[:0], fmt.Errorf("zstd encoder: %w", c.encErr)
	}
	return c.enc.EncodeAll(src, dst[:0]), nil
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
