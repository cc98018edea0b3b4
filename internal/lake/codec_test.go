package lake

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestZstdCodecEncoders: a busy encoder is never shared (a second caller gets an encoder of its
// own, so the row-group workers of writeGroups compress at the same time), and encoders are kept
// and reused once idle rather than made per call.
func TestZstdCodecEncoders(t *testing.T) {
	c := &zstdCodec{level: zstd.SpeedDefault}
	a, err := c.encoder()
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.encoder()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two callers at once got the same encoder")
	}
	c.idle = append(c.idle, a, b)
	seen := map[*zstd.Encoder]bool{a: true, b: true}
	for range 2 {
		e, err := c.encoder()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[e] {
			t.Fatal("made a new encoder while one was idle")
		}
		delete(seen, e)
	}
	if len(c.idle) != 0 {
		t.Fatalf("%d encoders idle after taking both, want 0", len(c.idle))
	}
}

// TestZstdCodecConcurrentRoundTrip: pages compressed by many goroutines at once decode to their
// own bytes, and the codec keeps no more encoders than there were callers.
func TestZstdCodecConcurrentRoundTrip(t *testing.T) {
	const callers, pages = 8, 50
	c := &zstdCodec{level: zstd.SpeedDefault}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			var dst, back []byte
			for i := range pages {
				src := bytes.Repeat(fmt.Appendf(nil, "caller %d page %d;", g, i), 200+i)
				var err error
				if dst, err = c.Encode(dst, src); err != nil {
					errs <- err
					return
				}
				if back, err = c.Decode(back, dst); err != nil {
					errs <- fmt.Errorf("caller %d page %d: %w", g, i, err)
					return
				}
				if !bytes.Equal(back, src) {
					errs <- fmt.Errorf("caller %d page %d: decoded %d bytes, not the %d encoded", g, i, len(back), len(src))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(c.idle); n < 1 || n > callers {
		t.Errorf("%d encoders kept, want between 1 and %d", n, callers)
	}
}
