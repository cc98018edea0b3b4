package pipeline

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/envelope"
	slog2 "github.com/sluice-project/sluice/internal/log"
)

// maxDecodeWorkers bounds the goroutines that decode one batch of records (see decodePool).
const maxDecodeWorkers = 4

// decodeChunkRecords is how many records one goroutine decodes at a time: large enough that handing
// a chunk over costs little against decoding it (~1 µs a record), small enough that a batch of the
// WAL's 4,096 records splits into chunks for every worker and the stage can merge the first while
// the last are decoded.
const decodeChunkRecords = 256

// decodeWorkers is the number of goroutines that decode payloads for the decoder stage: one per
// processor, at most maxDecodeWorkers.
func decodeWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), maxDecodeWorkers)) }

// decodePool decodes the payloads of one batch of records on several goroutines and hands the
// results to the stage's goroutine in record order. Decoding a payload depends on nothing but the
// payload, the topic and the registry, so the decoders (one each, with their own intern tables)
// need not agree on anything; everything that does depend on order or on state across records
// (deduplication, the lake writers' buffers, the hot rows) stays on the stage's goroutine, which
// merges chunk after chunk in order, as the single-goroutine stage did record after record. So the
// rows and their order are exactly those of decoding on one goroutine.
//
// The stage's goroutine decodes too: while the next chunk to merge is not ready, it decodes the next
// unclaimed one (with decs[0]) instead of waiting. Helpers live for one run call: run returns after
// every helper has returned, so no goroutine touches the records (valid only during Process) or a
// decoder afterwards.
type decodePool struct {
	decs   []*decode.Decoder // decs[0]: the stage's goroutine; decs[i]: helper i
	chunks []*decodeChunk    // reused from batch to batch
	next   atomic.Int64      // the next chunk to claim
	wg     sync.WaitGroup
}

// decodeChunk is a run of consecutive records and what decoding them gave.
type decodeChunk struct {
	recs []slog2.Record
	out  []decodedRecord // by record
	rd   []decode.Reading
	done chan struct{} // closed once out and rd are complete
}

// decodedRecord is what decoding one record gave: its readings are rd[previous end:end] of its chunk.
type decodedRecord struct {
	view   envelope.View // aliases the record's value
	envErr error         // the record is not a valid envelope
	err    error         // Decode's error: the payload goes to quarantine
	end    int32
}

// run decodes recs and calls merge with each chunk, in record order, on the calling goroutine.
func (p *decodePool) run(recs []slog2.Record, merge func(*decodeChunk)) {
	n := (len(recs) + decodeChunkRecords - 1) / decodeChunkRecords
	for len(p.chunks) < n {
		p.chunks = append(p.chunks, &decodeChunk{})
	}
	cs := p.chunks[:n]
	for i, c := range cs {
		c.recs = recs[i*decodeChunkRecords : min((i+1)*decodeChunkRecords, len(recs))]
		c.done = make(chan struct{})
	}
	p.next.Store(0)
	claim := func(dec *decode.Decoder) bool {
		i := p.next.Add(1) - 1
		if i >= int64(n) {
			return false
		}
		cs[i].decode(dec)
		close(cs[i].done)
		return true
	}
	for h := 1; h < min(len(p.decs), n); h++ {
		p.wg.Add(1)
		go func(dec *decode.Decoder) {
			defer p.wg.Done()
			for claim(dec) {
			}
		}(p.decs[h])
	}
	for _, c := range cs {
	wait:
		for {
			select {
			case <-c.done:
				break wait
			default:
			}
			if !claim(p.decs[0]) {
				<-c.done
				break
			}
		}
		merge(c)
	}
	p.wg.Wait()
	for _, c := range cs {
		c.recs = nil // the records are the log's, valid only during Process
		clear(c.out)
	}
}

// decode decodes c's records with dec.
func (c *decodeChunk) decode(dec *decode.Decoder) {
	c.out, c.rd = c.out[:0], c.rd[:0]
	for i := range c.recs {
		var o decodedRecord
		if err := envelope.DecodeView(c.recs[i].Value, &o.view); err != nil {
			o.envErr = err
		} else {
			// Decode retains neither topic nor payload, so the topic need not be a string of its own.
			c.rd, o.err = dec.Decode(c.rd, b2s(o.view.Topic), o.view.Payload, o.view.ReceivedAt)
		}
		o.end = int32(len(c.rd))
		c.out = append(c.out, o)
	}
}

// b2s views b as a string without copying; the string must not outlive b's next change.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
