package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/bench/internal/lakecheck"
	sluicebroker "github.com/sluice-project/sluice/internal/broker"
	"github.com/sluice-project/sluice/internal/simulate"
)

// brokerPlan sizes the broker measurements.
type brokerPlan struct {
	kinds []string // "mosquitto", "embedded"
	n     [2]int64 // messages per phase, by QoS
	runs  int
	conns int // publisher connections
	fleet int
}

// phase is the outcome of publishing n messages through a broker to one receiver.
type phase struct {
	published int64   // acknowledged by the broker (QoS 1) or written (QoS 0)
	pubRate   float64 // the publisher's own rate
	got       int64   // received by the subscriber, or distinct readings in sluice's lake
	sustained float64 // msg/s between 10% and 90% of got
	overall   float64 // got / (last arrival or commit - first publish)
	lost      int64   // published - got
	// CPU per message (µs): the receiver (sluice; 0 for the subscriber, which runs in this process),
	// the broker (0 for the embedded broker, which is sluice), and this process (the publisher, plus
	// the subscriber in a ceiling phase).
	cpuSluice, cpuBroker, cpuSelf float64
}

func perMsg(d time.Duration, n int64) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return float64(d.Microseconds()) / float64(n)
}

// measureBroker measures each broker kind: ceiling and sluice, QoS 0 and 1, plan.runs times.
func measureBroker(ctx context.Context, e *env, plan brokerPlan) ([]*Section, []string) {
	var sections []*Section
	var errs []string
	for _, kind := range plan.kinds {
		s := &Section{Title: "Broker ceiling and sluice through the same broker: " + brokerTitle(kind)}
		s.Intro = fmt.Sprintf("The simulator publishes %s (QoS 0) or %s (QoS 1) messages of the nested shape, unpaced, from %d connections, "+
			"for a fleet of %s sensors. Ceiling: a plain paho subscriber counting what the broker delivers. sluice: %s. "+
			"Rates are sustained rates (10%% → 90%% of the messages); the ratio is taken within each run. CPU per message is a process's CPU time "+
			"divided by the messages published; sluice's is counted from the first publish until its lake holds every message (its start-up "+
			"and shutdown excluded), the broker's and the publisher's over the whole phase. sluice's progress is read from its /metrics every "+
			sluiceSampleEvery.String()+" (each read costs it ~2.4 ms of CPU), the plain subscriber's from its counter every 5ms.",
			formatNum(float64(plan.n[0]), 0), formatNum(float64(plan.n[1]), 0), plan.conns, formatNum(float64(plan.fleet), 0), sluiceRole(kind))
		var figs [2]struct {
			pub, ceil, sl, ratio, e2e, lost, ceilLost                *Figure
			cpuCeilBroker, cpuCeilSelf, cpuSl, cpuSlBroker, cpuSlPub *Figure
			pipe, pipeRatio, pipeLost                                *Figure // embedded, QoS 1: broker.pipeline off
		}
		for q := range 2 {
			f := &figs[q]
			f.pub = s.Add(fmt.Sprintf("QoS %d: publisher's own rate (ceiling phase)", q), "msg/s", 0)
			f.ceil = s.Add(fmt.Sprintf("QoS %d: broker ceiling, plain subscriber", q), "msg/s", 0)
			f.sl = s.Add(fmt.Sprintf("QoS %d: sluice, readings through the decoder, committed every 1s", q), "readings/s", 0)
			f.ratio = s.Add(fmt.Sprintf("QoS %d: sluice / ceiling", q), "ratio", 3)
			f.e2e = s.Add(fmt.Sprintf("QoS %d: sluice end to end (first publish → last reading committed)", q), "readings/s", 0)
			f.ceilLost = s.Add(fmt.Sprintf("QoS %d: messages the plain subscriber did not receive", q), "messages", 0)
			f.lost = s.Add(fmt.Sprintf("QoS %d: messages published but not in sluice's readings/", q), "messages", 0)
			f.cpuCeilBroker = s.Add(fmt.Sprintf("QoS %d: CPU per message, broker (ceiling phase)", q), "µs", 2)
			f.cpuCeilSelf = s.Add(fmt.Sprintf("QoS %d: CPU per message, publisher + plain subscriber (ceiling phase)", q), "µs", 2)
			f.cpuSl = s.Add(fmt.Sprintf("QoS %d: CPU per message, sluice", q), "µs", 2)
			if kind == "mosquitto" {
				f.cpuSlBroker = s.Add(fmt.Sprintf("QoS %d: CPU per message, broker (sluice phase)", q), "µs", 2)
			}
			f.cpuSlPub = s.Add(fmt.Sprintf("QoS %d: CPU per message, publisher (sluice phase)", q), "µs", 2)
			if kind == "embedded" && q == 1 {
				f.pipe = s.Add("QoS 1: sluice with broker.pipeline: false", "readings/s", 0)
				f.pipeRatio = s.Add("QoS 1: sluice with broker.pipeline: false / ceiling", "ratio", 3)
				f.pipeLost = s.Add("QoS 1: messages published but not in readings/, broker.pipeline: false", "messages", 0).MustBe(0, false)
			}
			if q == 0 {
				f.ratio.Goal(0.95, true)
			} else {
				f.ratio.Goal(0.9, true)
				f.lost.MustBe(0, false)
				f.ceilLost.Goal(0, false)
			}
		}
		for r := range plan.runs {
			for q := range 2 {
				seed := int64(1000*r + q)
				e.say("broker %s run %d/%d QoS %d: ceiling", kind, r+1, plan.runs, q)
				f := &figs[q]
				c, err := ceilingPhase(ctx, e, kind, q, plan, seed)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s QoS %d ceiling, run %d: %v", kind, q, r+1, err))
					continue
				}
				e.say("  published %d at %.0f msg/s; received %d, sustained %.0f msg/s", c.published, c.pubRate, c.got, c.sustained)
				e.say("broker %s run %d/%d QoS %d: sluice", kind, r+1, plan.runs, q)
				sl, err := sluicePhase(ctx, e, kind, q, plan, seed, nil)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s QoS %d sluice, run %d: %v", kind, q, r+1, err))
					continue
				}
				e.say("  published %d at %.0f msg/s; %d readings in the lake, sustained %.0f readings/s, end to end %.0f; lost %d",
					sl.published, sl.pubRate, sl.got, sl.sustained, sl.overall, sl.lost)
				f.pub.Values = append(f.pub.Values, c.pubRate)
				f.ceil.Values = append(f.ceil.Values, c.sustained)
				f.ceilLost.Values = append(f.ceilLost.Values, float64(c.lost))
				f.sl.Values = append(f.sl.Values, sl.sustained)
				f.ratio.Values = append(f.ratio.Values, sl.sustained/c.sustained)
				f.e2e.Values = append(f.e2e.Values, sl.overall)
				f.lost.Values = append(f.lost.Values, float64(sl.lost))
				f.cpuCeilBroker.Values = append(f.cpuCeilBroker.Values, c.cpuBroker)
				f.cpuCeilSelf.Values = append(f.cpuCeilSelf.Values, c.cpuSelf)
				f.cpuSl.Values = append(f.cpuSl.Values, sl.cpuSluice)
				if f.cpuSlBroker != nil {
					f.cpuSlBroker.Values = append(f.cpuSlBroker.Values, sl.cpuBroker)
				}
				f.cpuSlPub.Values = append(f.cpuSlPub.Values, sl.cpuSelf)
				if f.pipe != nil {
					e.say("broker %s run %d/%d QoS %d: sluice with broker.pipeline off", kind, r+1, plan.runs, q)
					pl, err := sluicePhase(ctx, e, kind, q, plan, seed, []string{"SLUICE_BROKER_PIPELINE=false"})
					if err != nil {
						errs = append(errs, fmt.Sprintf("%s QoS %d sluice with broker.pipeline off, run %d: %v", kind, q, r+1, err))
						continue
					}
					e.say("  published %d at %.0f msg/s; %d readings in the lake, sustained %.0f readings/s; lost %d", pl.published, pl.pubRate, pl.got, pl.sustained, pl.lost)
					f.pipe.Values = append(f.pipe.Values, pl.sustained)
					f.pipeRatio.Values = append(f.pipeRatio.Values, pl.sustained/c.sustained)
					f.pipeLost.Values = append(f.pipeLost.Values, float64(pl.lost))
				}
			}
		}
		s.Notes = append(s.Notes, brokerNotes(kind)...)
		for q := range 2 {
			f := &figs[q]
			total := Summarize(f.cpuSl.Values).Median + Summarize(f.cpuSlPub.Values).Median
			if f.cpuSlBroker != nil {
				total += Summarize(f.cpuSlBroker.Values).Median
			}
			if total > 0 {
				s.Notes = append(s.Notes, fmt.Sprintf("QoS %d, CPU budget of the sluice phase: publisher + broker + sluice = %.1f µs per message (medians), "+
					"so %d cores sustain at most about %s msg/s, whoever does the work; sluice's own share is %.0f%%.",
					q, total, runtime.NumCPU(), formatNum(float64(runtime.NumCPU())*1e6/total, 0), 100*Summarize(f.cpuSl.Values).Median/total))
			}
		}
		sections = append(sections, s)
	}
	return sections, errs
}

func brokerTitle(kind string) string {
	if kind == "mosquitto" {
		if v := mosquittoVersion(); v != "" {
			return "Mosquitto (" + v + ")"
		}
		return "Mosquitto"
	}
	return "the embedded broker (mochi-mqtt)"
}

func sluiceRole(kind string) string {
	if kind == "mosquitto" {
		return "the sluice binary subscribed to the same Mosquitto (`--broker`, persistent session, mqtt.qos as measured), lake commits every second"
	}
	return "the sluice binary with its embedded broker, the publishers connected to it (a QoS 1 PUBACK waits for the WAL's fsync), lake commits every second"
}

func brokerNotes(kind string) []string {
	if kind == "mosquitto" {
		return []string{
			"Mosquitto runs privately for each phase with `max_inflight_messages 1000` (sluice's mqtt.max_inflight) and `max_queued_messages 1000000`; the publisher's QoS 1 acknowledgements come from Mosquitto, so sluice's own pace shows in its sustained rate, not the publisher's.",
			"Publisher, broker, subscriber or sluice all share the machine's cores: the ceiling is what the broker delivers to a subscriber that does nothing, on this machine, with this publisher running.",
		}
	}
	return []string{
		fmt.Sprintf("The ceiling is a bare mochi-mqtt server (the embedded broker's library, receive maximum %d, a queue of 65,535 messages per subscriber as Mosquitto gets max_queued_messages, no ingest hook) in a child process; sluice's embedded broker takes messages inside the broker, so there is no second hop to compare with.", sluicebroker.DefaultConfig().ReceiveMaximum),
		"At QoS 1 with broker.pipeline (the default) each connection may have up to broker.receive_maximum messages waiting for the WAL's group commit; the rows with it off show a connection held to one message per commit (fsync), 4 connections sharing each commit.",
	}
}

// ceilingPhase publishes through a fresh broker to a plain subscriber.
func ceilingPhase(ctx context.Context, e *env, kind string, qos int, plan brokerPlan, seed int64) (phase, error) {
	b, err := e.startBroker(kind)
	if err != nil {
		return phase{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			b.stop()
		}
	}()
	sub, err := subscribe(b.url, fmt.Sprintf("bench-sub-%d", e.seq.Add(1)), benchFilter, byte(qos))
	if err != nil {
		return phase{}, err
	}
	defer sub.close()
	var s series
	stop := sample(ctx, &s, 5*time.Millisecond, func(context.Context) (float64, bool) { return float64(sub.n.Load()), true })
	t0, self0 := time.Now(), harness.SelfCPU()
	stats, err := simulate.Run(ctx, publisher(b.url, qos, plan.conns, plan.fleet, plan.n[qos], seed), nil)
	if err != nil {
		stop()
		return phase{}, fmt.Errorf("publisher: %w", err)
	}
	waitSettled(ctx, 3*time.Second, 2*time.Minute, func() (float64, bool) {
		n := sub.n.Load()
		return float64(n), n >= stats.Published
	})
	stop()
	self := harness.SelfCPU() - self0
	got := sub.n.Load()
	s.add(time.Now(), float64(got)) // the sampler may have stopped just before the last arrivals
	sub.close()
	b.stop()
	stopped = true
	p := phase{published: stats.Published, pubRate: stats.Rate(), got: got, lost: stats.Published - got,
		cpuBroker: perMsg(b.cpu(), stats.Published), cpuSelf: perMsg(self, stats.Published)}
	p.sustained = s.slope(0.1*float64(got), 0.9*float64(got))
	if t, ok := s.reached(float64(got)); ok && got > 0 {
		p.overall = float64(got) / t.Sub(t0).Seconds()
	}
	return p, nil
}

// sluiceSampleEvery is how often the sluice phase reads sluice's /metrics. Each read costs sluice
// about 2.4 ms of CPU (a CPU profile over 300 reads: gathering every family, the process collector's
// /proc reads, the text encoding), which the ceiling's plain subscriber never pays: read every 50ms
// it took ~5% of sluice's CPU at QoS 1 through Mosquitto. The decoder's record counter rises smoothly,
// so the 10% and 90% moments are interpolated between reads (series.reached) as before.
const sluiceSampleEvery = 200 * time.Millisecond

// sluicePhase publishes n messages to sluice, through a fresh Mosquitto or to its embedded broker,
// and counts the readings its lake holds afterwards.
func sluicePhase(ctx context.Context, e *env, kind string, qos int, plan brokerPlan, seed int64, extra []string) (phase, error) {
	settings := append([]string{"SLUICE_LAKE_FLUSH_INTERVAL=1s"}, extra...)
	var args []string
	var brokerURL string
	var b *broker
	if kind == "mosquitto" {
		var err error
		if b, err = e.startBroker(kind); err != nil {
			return phase{}, err
		}
		defer b.stop()
		brokerURL = b.url
		args = append(args, "--broker", b.url)
		settings = append(settings, fmt.Sprintf("SLUICE_MQTT_QOS=%d", qos), "SLUICE_MQTT_TOPICS="+benchFilter,
			fmt.Sprintf("SLUICE_MQTT_CLIENT_ID=bench-sluice-%d", e.seq.Add(1)))
	}
	p, lakeDir, err := e.startSluice(fmt.Sprintf("sluice-%s-qos%d", kind, qos), settings, args...)
	if err != nil {
		return phase{}, err
	}
	defer p.Kill()
	if kind == "embedded" {
		brokerURL = "mqtt://" + p.MQTT
	}
	var latest atomic.Pointer[harness.Metrics]
	var s series
	stop := sample(ctx, &s, sluiceSampleEvery, func(ctx context.Context) (float64, bool) {
		m, err := p.Metrics(ctx)
		if err != nil {
			return 0, false
		}
		latest.Store(&m)
		return m.Get("sluice_stage_records_total", "stage", "decoder"), true
	})
	// sluice's CPU is counted from the first publish until its lake holds everything: not its
	// start-up (opening DuckDB) nor its shutdown, which no message pays for.
	cpu0, err := p.CPUNow()
	if err != nil {
		stop()
		return phase{}, err
	}
	var cpuDone time.Duration
	t0, self0 := time.Now(), harness.SelfCPU()
	stats, err := simulate.Run(ctx, publisher(brokerURL, qos, plan.conns, plan.fleet, plan.n[qos], seed), nil)
	self := harness.SelfCPU() - self0
	if err != nil {
		stop()
		return phase{}, fmt.Errorf("publisher: %w", err)
	}
	var tDone time.Time
	waitSettled(ctx, 5*time.Second, 3*time.Minute, func() (float64, bool) {
		m := latest.Load()
		if m == nil {
			return 0, false
		}
		records := m.Get("sluice_stage_records_total", "stage", "decoder")
		end := m.Get("sluice_wal_next_offset") - 1
		caught := m.Get("sluice_stage_committed_offset", "stage", "decoder") >= end &&
			m.Get("sluice_stage_committed_offset", "stage", "archiver") >= end
		if caught && records >= float64(stats.Published) {
			tDone = time.Now()
			if c, err := p.CPUNow(); err == nil {
				cpuDone = c
			}
			return records, true
		}
		return records + m.Get("sluice_stage_committed_offset", "stage", "decoder"), false
	})
	stop()
	if err := p.Stop(time.Minute); err != nil {
		return phase{}, err
	}
	var brokerCPU time.Duration
	if b != nil {
		b.stop()
		brokerCPU = b.cpu()
	}
	if tDone.IsZero() {
		tDone = time.Now()
	}
	if cpuDone == 0 { // never settled (or /proc unreadable then): up to the process's exit
		cpuDone = p.CPU()
	}
	chk, err := lakecheck.Open(lakeDir)
	if err != nil {
		return phase{}, err
	}
	defer chk.Close()
	rd, err := chk.Readings(ctx)
	if err != nil {
		return phase{}, err
	}
	if rd.Duplicates() != 0 {
		return phase{}, fmt.Errorf("readings/ holds %d duplicates of %d readings", rd.Duplicates(), rd.Distinct)
	}
	_, processed := s.last()
	ph := phase{published: stats.Published, pubRate: stats.Rate(), got: rd.Distinct, lost: stats.Published - rd.Distinct,
		cpuSluice: perMsg(cpuDone-cpu0, stats.Published), cpuSelf: perMsg(self, stats.Published), cpuBroker: perMsg(brokerCPU, stats.Published)}
	ph.sustained = s.slope(0.1*processed, 0.9*processed)
	ph.overall = float64(rd.Distinct) / tDone.Sub(t0).Seconds()
	if math.IsInf(ph.overall, 0) {
		ph.overall = math.NaN()
	}
	return ph, nil
}
