package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

// restartMosquitto stops and starts the external broker sz.events times during ingest. Mosquitto keeps
// sluice's session and the messages queued for it across restarts (persistence); publishers and
// sluice reconnect by themselves.
func restartMosquitto(ctx context.Context, e *env) *Result {
	sz := e.sizes(size{events: 5, n: 40_000, rate: 3000, conns: 8, fleet: 1000}, size{events: 1, n: 4000, rate: 2000, conns: 4, fleet: 100})
	res := &Result{Scenario: "restart-mosquitto", Events: fmt.Sprintf("Mosquitto stopped (SIGINT) and started %d times during QoS 1 ingest", sz.events)}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	m, err := testkit.RunMosquitto(filepath.Join(e.work, "restart-mosquitto-broker"), mosquittoConf...)
	if err != nil {
		res.Err = err
		return res
	}
	defer m.Stop()
	r, ld, err := startRig(ctx, e, "restart-mosquitto", m.URL, sz)
	if err != nil {
		res.Err = err
		return res
	}
	defer r.kill()
	midstream := 0
	for k := 1; k <= sz.events; k++ {
		threshold := float64(int64(k) * sz.n / int64(sz.events+2))
		if err := testkit.Poll(3*time.Minute, 20*time.Millisecond, func() bool { return r.metrics().Get("sluice_wal_next_offset") >= threshold },
			fmt.Sprintf("log reaching offset %.0f before restart %d", threshold, k)); err != nil {
			res.Err = err
			return res
		}
		if ld.running() {
			midstream++
		}
		if err := m.Restart(); err != nil {
			res.Err = err
			return res
		}
		e.say("restart-mosquitto: restart %d of %d", k, sz.events)
	}
	res.Check(midstream == sz.events, "every restart came while the publishers were sending", "%d of %d", midstream, sz.events)
	r.settleReconnects(res)
	return finish(ctx, res, r, ld, true)
}

// settleReconnects records how often sluice lost its broker connection, from its metrics.
func (r *rig) settleReconnects(res *Result) {
	m := r.metrics()
	res.Check(true, "sluice reconnected by itself", "sluice_mqtt_reconnects_total{reason=connection_lost} = %.0f, connect errors = %.0f",
		m.Get("sluice_mqtt_reconnects_total", "reason", "connection_lost"), m.Get("sluice_mqtt_connect_errors_total"))
}

// restartEmbedded stops sluice gracefully (SIGTERM) and starts it again sz.events times while
// publishers send to its embedded broker.
func restartEmbedded(ctx context.Context, e *env) *Result {
	sz := e.sizes(size{events: 5, n: 40_000, rate: 3000, conns: 8, fleet: 1000}, size{events: 1, n: 4000, rate: 2000, conns: 4, fleet: 100})
	res := &Result{Scenario: "restart-embedded", Events: fmt.Sprintf("sluice (and so its broker) stopped with SIGTERM and started %d times during QoS 1 ingest", sz.events)}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	r, ld, err := startRig(ctx, e, "restart-embedded", "", sz)
	if err != nil {
		res.Err = err
		return res
	}
	defer r.kill()
	midstream, clean := 0, 0
	for k := 1; k <= sz.events; k++ {
		threshold := float64(int64(k) * sz.n / int64(sz.events+2))
		if err := testkit.Poll(3*time.Minute, 20*time.Millisecond, func() bool { return r.metrics().Get("sluice_wal_next_offset") >= threshold || !ld.running() },
			fmt.Sprintf("log reaching offset %.0f before restart %d", threshold, k)); err != nil {
			res.Err = err
			return res
		}
		if ld.running() {
			midstream++
		}
		t0 := time.Now()
		if err := r.stop(); err != nil {
			res.Check(false, "every SIGTERM ends in a clean exit", "stop %d: %v", k, err)
		} else {
			clean++
		}
		down := time.Since(t0)
		if err := r.start(); err != nil {
			res.Err = err
			return res
		}
		e.say("restart-embedded: restart %d of %d (stopping took %s)", k, sz.events, down.Round(time.Millisecond))
	}
	res.Check(midstream == sz.events, "every restart came while the publishers were sending", "%d of %d", midstream, sz.events)
	res.Check(clean == sz.events, "every SIGTERM ended in a clean exit (status 0)", "%d of %d", clean, sz.events)
	return finish(ctx, res, r, ld, false)
}
