package broker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/memlog"
)

// groupCommitLog stands in for the WAL (internal/log/wal, not written yet) in benchmarks: one goroutine
// commits whatever appends queued while the previous commit ran, by writing their bytes to a file and
// calling fdatasync (about 0.2ms on these machines), then hands them to memlog and completes them. This
// is the cost model of a group-committing WAL: a caller waits for one fdatasync, callers share it.
type groupCommitLog struct {
	*memlog.Log
	f       *os.File
	mu      sync.Mutex
	queue   []gcReq
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	commits atomic.Int64
	buf     bytes.Buffer
}

type gcReq struct {
	entries []log.Entry
	done    func(error)
}

func newGroupCommitLog(tb testing.TB) *groupCommitLog {
	f, err := os.Create(filepath.Join(tb.TempDir(), "wal"))
	if err != nil {
		tb.Fatal(err)
	}
	g := &groupCommitLog{Log: memlog.New(), f: f, wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go g.run()
	tb.Cleanup(func() { close(g.stop); <-g.stopped; f.Close() })
	return g
}

func (g *groupCommitLog) enqueue(r gcReq) {
	g.mu.Lock()
	g.queue = append(g.queue, r)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *groupCommitLog) Append(ctx context.Context, es ...log.Entry) error {
	ch := make(chan error, 1)
	g.enqueue(gcReq{entries: es, done: func(err error) { ch <- err }})
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *groupCommitLog) AppendAsync(es []log.Entry, done func(error)) {
	g.enqueue(gcReq{entries: es, done: done})
}

func (g *groupCommitLog) run() {
	defer close(g.stopped)
	var batch []gcReq
	for {
		select {
		case <-g.stop:
			return
		case <-g.wake:
		}
		g.mu.Lock()
		batch, g.queue = g.queue, batch[:0]
		g.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		g.buf.Reset()
		for _, r := range batch {
			for _, e := range r.entries {
				g.buf.Write(e.Value)
			}
		}
		_, err := g.f.Write(g.buf.Bytes())
		if err == nil {
			err = syscall.Fdatasync(int(g.f.Fd()))
		}
		g.commits.Add(1)
		for _, r := range batch {
			if err == nil {
				err = g.Log.Append(context.Background(), r.entries...)
			}
			r.done(err)
		}
		clear(batch)
	}
}

// BenchmarkPublishQoS1 publishes QoS 1 messages (160-byte payloads) from 1 and from 64 bare 3.1.1
// connections, each keeping up to 256 unacknowledged, and counts PUBACKs: broker throughput when every
// message is durable before its PUBACK. log=memlog has no commit cost; log=fdatasync is a group commit
// with a real fdatasync per commit. mode=sync waits in the read goroutine; mode=pipelined is
// broker.pipeline.
func BenchmarkPublishQoS1(b *testing.B) {
	for _, mode := range modes {
		for _, logKind := range []string{"memlog", "fdatasync"} {
			for _, conns := range []int{1, 64} {
				b.Run(fmt.Sprintf("mode=%s/log=%s/conns=%d", mode.name, logKind, conns), func(b *testing.B) {
					benchPublish(b, mode.pipeline, logKind, conns, 1)
				})
			}
		}
	}
}

// BenchmarkPublishQoS0 is the same at QoS 0: nobody waits for the log; the benchmark ends when the log
// holds every message.
func BenchmarkPublishQoS0(b *testing.B) {
	for _, conns := range []int{1, 64} {
		b.Run(fmt.Sprintf("log=fdatasync/conns=%d", conns), func(b *testing.B) {
			benchPublish(b, false, "fdatasync", conns, 0)
		})
	}
}

func benchPublish(b *testing.B, pipeline bool, logKind string, conns int, qos byte) {
	const window = 256
	var l log.Appender
	var next func() int64
	var commits func() int64
	switch logKind {
	case "memlog":
		m := memlog.New()
		l, next, commits = m, m.Next, func() int64 { return m.Next() }
	default:
		g := newGroupCommitLog(b)
		l, next, commits = g, g.Next, g.commits.Load
	}
	br, _ := startBroker(b, modeConfig(pipeline), l)
	clients := make([]*raw3, conns)
	for i := range clients {
		clients[i], _ = dialRaw3(b, br.Addr().String(), fmt.Sprintf("bench-%d", i), true)
	}
	payload := bytes.Repeat([]byte("x"), 160)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	start, c0 := time.Now(), commits()
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	for i, c := range clients {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		if n == 0 {
			continue
		}
		topic := fmt.Sprintf("plant/bench/sensor-%d/temperature", i)
		sem := make(chan struct{}, window)
		if qos == 1 {
			wg.Go(func() { // reader: PUBACKs
				for range n {
					if _, err := c.readPuback(time.Minute); err != nil {
						errs <- err
						return
					}
					<-sem
				}
			})
		}
		wg.Go(func() { // writer
			for j := range n {
				if qos == 1 {
					select {
					case sem <- struct{}{}:
					default:
						if err := c.flush(); err != nil {
							errs <- err
							return
						}
						sem <- struct{}{}
					}
				}
				if err := c.writePublish(uint16(j%65535+1), topic, payload, qos, false); err != nil {
					errs <- err
					return
				}
			}
			if err := c.flush(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	if qos == 0 {
		deadline := time.Now().Add(time.Minute)
		for next() < int64(b.N) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	if got := next(); got != int64(b.N) {
		b.Fatalf("log holds %d messages, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	if logKind != "memlog" {
		b.ReportMetric(float64(b.N)/float64(max(commits()-c0, 1)), "msg/commit")
	}
}
