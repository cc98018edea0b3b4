package main

import (
	"context"
	"math"
	"sync"
	"time"
)

// series is a counter sampled over time.
type series struct {
	mu sync.Mutex
	t  []time.Time
	v  []float64
}

func (s *series) add(t time.Time, v float64) {
	s.mu.Lock()
	s.t = append(s.t, t)
	s.v = append(s.v, v)
	s.mu.Unlock()
}

// last returns the latest sample (zero time when none).
func (s *series) last() (time.Time, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.t) == 0 {
		return time.Time{}, 0
	}
	return s.t[len(s.t)-1], s.v[len(s.v)-1]
}

// reached returns when the counter first reached x, interpolated linearly between the samples
// around it; false when it never did.
func (s *series) reached(x float64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.v {
		if v < x {
			continue
		}
		if i == 0 || s.v[i-1] >= v {
			return s.t[i], true
		}
		frac := (x - s.v[i-1]) / (v - s.v[i-1])
		return s.t[i-1].Add(time.Duration(frac * float64(s.t[i].Sub(s.t[i-1])))), true
	}
	return time.Time{}, false
}

// slope returns the counter's rate per second between the moments it reached lo and hi (NaN when it
// did not reach both, or reached them at once).
func (s *series) slope(lo, hi float64) float64 {
	t0, ok0 := s.reached(lo)
	t1, ok1 := s.reached(hi)
	if !ok0 || !ok1 || !t1.After(t0) {
		return math.NaN()
	}
	return (hi - lo) / t1.Sub(t0).Seconds()
}

// sample calls read every interval and records what it returns (skipping failed reads) until ctx is
// done; the returned function stops it and waits.
func sample(ctx context.Context, s *series, every time.Duration, read func(context.Context) (float64, bool)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v, ok := read(ctx); ok {
				s.add(time.Now(), v)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// waitSettled polls cond until it reports done, or until the value it reports has not changed for
// idle, or until limit; it returns whether cond reported done.
func waitSettled(ctx context.Context, idle, limit time.Duration, cond func() (value float64, done bool)) bool {
	deadline := time.Now().Add(limit)
	lastV, lastChange := math.NaN(), time.Now()
	for {
		v, done := cond()
		if done {
			return true
		}
		if v != lastV {
			lastV, lastChange = v, time.Now()
		}
		if time.Since(lastChange) > idle || time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
