package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

// size is how big a scenario runs.
type size struct {
	events int     // kills or restarts
	n      int64   // messages
	rate   float64 // messages per second
	conns  int
	fleet  int
}

func (e *env) sizes(full, quick size) size {
	if e.quick {
		return quick
	}
	return full
}

// mosquittoConf: let sluice's session have 1,000 QoS 1 messages in flight (Mosquitto's default is
// 20) and queue everything while sluice is away (default 1,000, past which Mosquitto drops).
var mosquittoConf = []string{"max_inflight_messages 1000", "max_queued_messages 10000000"}

// sigkill kills sluice with SIGKILL sz.events times during QoS 1 ingest and restarts it each time.
// With external, the publishers send to a private Mosquitto that sluice subscribes to; else to
// sluice's embedded broker.
func sigkill(ctx context.Context, e *env, external bool) *Result {
	sz := e.sizes(size{events: 20, n: 80_000, rate: 3000, conns: 8, fleet: 1000}, size{events: 3, n: 6000, rate: 2000, conns: 4, fleet: 100})
	name := "sigkill-embedded"
	if external {
		name = "sigkill-mosquitto"
	}
	res := &Result{Scenario: name, Events: fmt.Sprintf("%d SIGKILLs during QoS 1 ingest, each followed by a restart", sz.events)}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()

	brokerURL := ""
	if external {
		dir := filepath.Join(e.work, name+"-mosquitto")
		m, err := testkit.RunMosquitto(dir, mosquittoConf...)
		if err != nil {
			res.Err = err
			return res
		}
		defer m.Stop()
		brokerURL = m.URL
	}
	r, ld, err := startRig(ctx, e, name, brokerURL, sz)
	if err != nil {
		res.Err = err
		return res
	}
	defer r.kill()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	midstream := 0
	for k := 1; k <= sz.events; k++ {
		// Kill k comes once the log holds k/(events+2) of the messages (offsets continue across
		// restarts), plus a random moment: every kill lands mid-stream whatever the machine's speed.
		threshold := float64(int64(k) * sz.n / int64(sz.events+2))
		err := testkit.Poll(3*time.Minute, 10*time.Millisecond, func() bool {
			return r.metrics().Get("sluice_wal_next_offset") >= threshold || !ld.running() && !external
		}, fmt.Sprintf("log reaching offset %.0f before kill %d", threshold, k))
		if err != nil {
			res.Err = err
			return res
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		m := r.metrics()
		if ld.running() || (external && m.Get("sluice_wal_next_offset") < float64(sz.n)) {
			midstream++
		}
		r.kill()
		e.say("%s: SIGKILL %d of %d at log offset %.0f", name, k, sz.events, m.Get("sluice_wal_next_offset"))
		if err := r.start(); err != nil {
			res.Err = err
			return res
		}
	}
	res.Check(midstream == sz.events, "every kill landed while messages were still arriving", "%d of %d", midstream, sz.events)
	return finish(ctx, res, r, ld, external)
}

// finish waits for the publishers, makes sure sluice has taken in everything (with an external
// broker: the sentinel), stops sluice gracefully and accounts for every message.
func finish(ctx context.Context, res *Result, r *rig, ld *load, external bool) *Result {
	stats, err := ld.wait()
	if err != nil {
		res.Err = fmt.Errorf("publishers: %w", err)
		return res
	}
	if external {
		if err := publishSentinel(r.broker); err != nil {
			res.Err = err
			return res
		}
		if err := awaitSentinel(ctx, r.lake(), 3*time.Minute); err != nil {
			res.Err = fmt.Errorf("%w; sluice's last log lines:\n%s", err, tail(r.logs(), 3000))
			return res
		}
	}
	if err := r.stop(); err != nil {
		res.Err = err
		return res
	}
	if err := account(ctx, res, r.lake(), stats, ld.cfg.Truth); err != nil {
		res.Err = err
	}
	return res
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
