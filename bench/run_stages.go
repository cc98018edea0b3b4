package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/envelope"
	"github.com/sluice-project/sluice/internal/lake"
	slog2 "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/pipeline"
	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/simulate"
)

// corpus is n encoded envelopes in one arena (no pointers: the garbage collector does not scan it).
type corpus struct {
	data []byte
	ends []int64 // envelope i is data[ends[i-1]:ends[i]]
	reg  *sensor.Registry
}

func (c *corpus) len() int { return len(c.ends) }

func (c *corpus) at(i int) []byte {
	start := int64(0)
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.data[start:c.ends[i]]
}

// makeCorpus generates n messages of the default (nested) shape for a fleet of sensors publishing
// once a second each, starting at start: message k is sensor k mod fleet at start + k/fleet seconds,
// received 1 to 5 ms later. The registry knows the fleet.
func makeCorpus(n, fleet int, seed int64, start time.Time) (*corpus, error) {
	cfg := simulate.DefaultConfig()
	cfg.Fleet, cfg.Seed = fleet, seed
	reg, err := simulate.Sensors(cfg)
	if err != nil {
		return nil, err
	}
	gen, err := simulate.NewGenerator(cfg, reg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xbe4c))
	c := &corpus{data: make([]byte, 0, n*230), ends: make([]int64, 0, n), reg: reg}
	slot := time.Second / time.Duration(fleet)
	buf := make([]byte, 0, 512)
	for k := range n {
		now := start.Add(time.Duration(k/fleet)*time.Second + time.Duration(k%fleet)*slot)
		m := gen.Next(buf[:0], now)
		env := envelope.Envelope{
			ReceivedAt: now.Add(time.Millisecond + time.Duration(rng.IntN(4000))*time.Microsecond).UnixNano(),
			Source:     envelope.SourceMQTT, QoS: 1, Topic: m.Topic, Payload: m.Payload,
		}
		c.data = env.AppendBinary(c.data)
		c.ends = append(c.ends, int64(len(c.data)))
		buf = m.Payload[:0]
	}
	return c, nil
}

// stageNames are the stages' names, in the order of stages.runners.
var stageNames = [2]string{pipeline.ArchiverName, pipeline.DecoderName}

// stages is the archiver and the decoder reading one log and writing one lake, as the app wires them.
type stages struct {
	runners []*pipeline.Runner
	wg      sync.WaitGroup
	errs    [2]error
	done    [2]time.Time // when each runner returned
}

// startStages registers both consumer groups on l and runs them, each on its own goroutine labelled
// stage=<name> for CPU profiles.
func startStages(ctx context.Context, l slog2.Log, lk *lake.Lake, lcfg lake.Config, reg *sensor.Registry, mreg prometheus.Registerer) (*stages, error) {
	arch, err := pipeline.NewArchiver(ctx, lk, lcfg)
	if err != nil {
		return nil, err
	}
	dec, err := pipeline.NewDecoder(ctx, lk, lcfg, decode.DefaultConfig(), reg, pipeline.DefaultDedupConfig(), mreg)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	s := &stages{}
	for i, stage := range [2]pipeline.Stage{arch, dec} {
		r, err := pipeline.NewRunner(stageNames[i], l, stage, logger, mreg)
		if err != nil {
			return nil, err
		}
		r.DrainIdle = 10 * time.Millisecond
		s.runners = append(s.runners, r)
	}
	for i, r := range s.runners {
		s.wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("stage", stageNames[i]), func(ctx context.Context) {
				s.errs[i] = r.Run(ctx)
			})
			s.done[i] = time.Now()
		})
	}
	return s, nil
}

// drain asks both stages to read the log to its end and commit, and waits for them.
func (s *stages) drain() error {
	for _, r := range s.runners {
		r.Drain()
	}
	s.wg.Wait()
	return errors.Join(s.errs[:]...)
}

// appendAll appends every envelope of c to l with AppendAsync, batch entries per call and at most
// window calls outstanding, and returns once all are durable.
func appendAll(ctx context.Context, l slog2.Appender, c *corpus, batch, window int) error {
	sem := make(chan struct{}, window)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	pool := sync.Pool{New: func() any { s := make([]slog2.Entry, 0, batch); return &s }}
	for i := 0; i < c.len(); i += batch {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		es := pool.Get().(*[]slog2.Entry)
		*es = (*es)[:0]
		for j := i; j < min(i+batch, c.len()); j++ {
			*es = append(*es, slog2.Entry{Value: c.at(j)})
		}
		wg.Add(1)
		l.AppendAsync(*es, func(err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			pool.Put(es)
			<-sem
			wg.Done()
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("append: %w", first)
	}
	return nil
}
