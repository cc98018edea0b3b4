package simulate

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sluice-project/sluice/internal/config"
	"github.com/sluice-project/sluice/internal/sensor"
)

// Message is one generated MQTT message.
type Message struct {
	Topic   string
	Payload []byte // the bytes appended to the dst given to Next or Slot
	Truth   Truth
	Sensor  int // index of the sensor in the generator (0 … Len()-1)
}

// Generator makes the messages of a fleet of simulated sensors: values, timestamps, faults and
// payloads, with no network. It is not safe for concurrent use: one goroutine owns it.
//
// Each sensor has its own random streams (seeded by the seed and the sensor's id), one for its values
// and one for its faults, so a sensor's values depend only on the seed and the times it is asked at:
// not on the other sensors, on the connections, or on whether faults are injected.
type Generator struct {
	sh      *shape
	sensors []simSensor
	cursor  int
	seq     int64
	period  time.Duration // each sensor's expected time between messages, 0 = unknown

	silentSlots int64 // slots left empty by the gap fault

	cum      [7]float64 // cumulative fault probabilities, in FaultsConfig.list order
	faults   [7]Fault
	anyFault bool

	dup struct {
		pending bool
		topic   string
		payload []byte
		truth   Truth
		sensor  int
	}
}

// simSensor is one simulated sensor's fixed description and moving state.
type simSensor struct {
	id, metric, topic string
	frag              [3]string
	lo, hi, width     float64
	spikeWidth        float64

	vals, errs *rand.Rand // value and fault streams

	base, walk, phase float64 // value = lo + width·(base + walk + daily cycle + noise)

	stuckLeft int
	stuckVal  float64
	gapLeft   int
	missed    int
	swap      bool  // the next message carries swapTS (second half of out_of_order)
	swapTS    int64 // in resolution units
	lastTS    int64 // last normal timestamp, in resolution units
	lastNow   time.Time
}

// NewGenerator returns a generator for the sensors of reg as they are (nil: Sensors(cfg), which applies
// cfg.Fleet), in cfg's shape, topic, seed and faults. cfg.Rate or cfg.Interval sets the period that
// out_of_order assumes before a sensor has a history.
func NewGenerator(cfg Config, reg *sensor.Registry) (*Generator, error) {
	var es config.Errors
	if _, ok := shapes[cfg.Shape]; !ok {
		es.Add("shape", fmt.Sprintf("%q is not a shape", cfg.Shape), "use one of nested, flat-unix, metric-type, topic-ms")
	}
	if cfg.Topic != "" {
		if err := checkTopic(cfg.Topic); err != nil {
			es.Add("topic", err.Error(), "write a topic such as sensors/{sensor}/{metric}, without + or #")
		}
	}
	es.Nest("faults", cfg.Faults.Validate())
	if len(es) > 0 {
		return nil, fmt.Errorf("simulate: %w", es)
	}
	if reg == nil {
		var err error
		if reg, err = Sensors(cfg); err != nil {
			return nil, err
		}
	}
	if reg.Len() == 0 {
		return nil, fmt.Errorf("simulate: %w", ErrNoSensors)
	}
	g := &Generator{sh: shapes[cfg.Shape]}
	tmpl := cfg.Topic
	if tmpl == "" {
		tmpl = g.sh.topic
	}
	sum := 0.0
	for i, f := range cfg.Faults.list() {
		sum += f.p
		g.cum[i], g.faults[i] = sum, f.fault
		g.anyFault = g.anyFault || f.p > 0
	}
	all := reg.Sensors()
	switch {
	case cfg.Rate > 0:
		g.period = time.Duration(float64(len(all)) / cfg.Rate * float64(time.Second))
	case cfg.Interval > 0:
		g.period = cfg.Interval
	}
	g.sensors = make([]simSensor, len(all))
	for i := range all {
		s := &all[i]
		metric, unit, lo, hi := profile(s)
		site, line := siteLine(i)
		h := fnv.New64a()
		h.Write([]byte(s.ID))
		key := h.Sum64()
		ss := &g.sensors[i]
		*ss = simSensor{
			id: s.ID, metric: metric, topic: expandTopic(tmpl, s.ID, metric, site, line),
			frag: g.sh.frags(s, s.ID, metric, unit),
			lo:   lo, hi: hi, width: hi - lo,
			vals: rand.New(rand.NewPCG(uint64(cfg.Seed), key)),
			errs: rand.New(rand.NewPCG(uint64(cfg.Seed)^0x9e3779b97f4a7c15, key)),
		}
		ss.spikeWidth = ss.width
		if ss.spikeWidth <= 0 {
			ss.spikeWidth = math.Max(math.Abs(lo)/10, 1)
		}
		ss.base = 0.35 + 0.3*ss.vals.Float64()
		ss.phase = 2*ss.vals.Float64() - 1
		ss.lastTS = math.MinInt64
	}
	return g, nil
}

// Len returns the number of sensors.
func (g *Generator) Len() int { return len(g.sensors) }

// SensorID returns the id of sensor i.
func (g *Generator) SensorID(i int) string { return g.sensors[i].id }

// Resolution returns the precision of the shape's timestamps (1µs, 1ms or 1s). Two messages of one
// sensor less than this apart would carry the same timestamp; at µs and ms the generator moves the
// later one on by one unit, at 1s it cannot without drifting, so keep each sensor's interval ≥ 1s there.
func (g *Generator) Resolution() time.Duration { return g.sh.res }

// Pending reports whether a duplicate waits: the next Next or Slot returns it.
func (g *Generator) Pending() bool { return g.dup.pending }

// Next returns the next message, timestamped now: a pending duplicate first, else the reading of the
// next sensor in round-robin order (sensors silent in a gap are passed over).
func (g *Generator) Next(dst []byte, now time.Time) Message {
	if g.dup.pending {
		return g.emitDup(dst)
	}
	for {
		i := g.advance()
		if m, ok := g.emit(i, dst, now); ok {
			return m
		}
	}
}

// Slot is Next for paced publishing, where every sensor has its own slot in time: it takes the next
// sensor's slot and returns false when that sensor is silent (a gap). A pending duplicate is returned
// without taking a slot.
func (g *Generator) Slot(dst []byte, now time.Time) (Message, bool) {
	if g.dup.pending {
		return g.emitDup(dst), true
	}
	return g.emit(g.advance(), dst, now)
}

func (g *Generator) advance() int {
	i := g.cursor
	if g.cursor++; g.cursor == len(g.sensors) {
		g.cursor = 0
	}
	return i
}

const (
	walkLimit  = 0.15 // the random walk stays within ±15% of the range width
	cycleAmp   = 0.15 // the daily cycle's amplitude, as a fraction of the width; peak at 15:00 UTC
	noiseSigma = 0.01
	noiseLimit = 0.03
)

// value advances sensor s's process to now and returns its normal value, rounded to two decimals and
// inside [lo, hi].
func (s *simSensor) value(now time.Time) float64 {
	s.walk = 0.98*s.walk + noiseSigma*s.vals.NormFloat64()
	if s.walk > walkLimit {
		s.walk = 2*walkLimit - s.walk
	} else if s.walk < -walkLimit {
		s.walk = -2*walkLimit - s.walk
	}
	noise := max(-noiseLimit, min(noiseLimit, noiseSigma*s.vals.NormFloat64()))
	const day = 24 * int64(time.Hour)
	hours := float64(((now.UnixNano()%day)+day)%day) / float64(time.Hour)
	cycle := cycleAmp * math.Sin(2*math.Pi*(hours-9+s.phase)/24)
	v := round2(s.lo + s.width*(s.base+s.walk+cycle+noise))
	return max(s.lo, min(s.hi, v))
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// draw picks at most one fault from the fault stream.
func (g *Generator) draw(s *simSensor) Fault {
	u := s.errs.Float64()
	for i, c := range g.cum {
		if u < c {
			return g.faults[i]
		}
	}
	return FaultNone
}

// emit makes sensor i's message for now, or returns false when the sensor is silent.
func (g *Generator) emit(i int, dst []byte, now time.Time) (Message, bool) {
	s := &g.sensors[i]
	v := s.value(now) // the process moves on even while the sensor is silent
	if s.gapLeft > 0 {
		s.gapLeft--
		s.missed++
		g.silentSlots++
		return Message{}, false
	}
	tr := Truth{SensorID: s.id, Metric: s.metric, Topic: s.topic, Value: v, HasValue: true}
	res := int64(g.sh.res)
	var ts int64 // in resolution units
	normal := true
	malformed := ""
	switch {
	case s.missed > 0:
		tr.Fault, tr.Missed, s.missed = FaultGap, s.missed, 0
	case s.swap:
		tr.Fault, ts, s.swap, normal = FaultOutOfOrder, s.swapTS, false, false
	case s.stuckLeft > 0:
		tr.Fault, tr.Value = FaultStuck, s.stuckVal
		s.stuckLeft--
	case g.anyFault:
		switch f := g.draw(s); f {
		case FaultSpike:
			sign := 1.0
			if s.errs.IntN(2) == 0 {
				sign = -1
			}
			tr.Fault, tr.Value = f, round2(v+sign*(3+7*s.errs.Float64())*s.spikeWidth)
		case FaultStuck:
			tr.Fault, s.stuckVal, s.stuckLeft = f, v, 4+s.errs.IntN(26) // runs of 5 to 30 messages
		case FaultGap:
			s.gapLeft, s.missed = 2+s.errs.IntN(8), 1 // 3 to 10 silent slots, this one the first
			g.silentSlots++
			return Message{}, false
		case FaultDuplicate:
			g.dup.pending = true // this message is the original; the copy carries the label
		case FaultLate:
			back := time.Minute + time.Duration(s.errs.Int64N(int64(9*time.Minute)))
			tr.Fault, ts, normal = f, floorDiv(now.Add(-back).UnixNano(), res), false
		case FaultOutOfOrder:
			est := g.period
			if !s.lastNow.IsZero() && now.After(s.lastNow) {
				est = now.Sub(s.lastNow)
			}
			if est <= 0 {
				est = time.Second
			}
			cur := g.stamp(s, now)
			tr.Fault, ts, normal = f, cur+max(1, int64(est)/res), false
			s.swap, s.swapTS = true, cur
		case FaultMalformed:
			malformed = malformedKinds[s.errs.IntN(len(malformedKinds))]
			tr.Fault, tr.Kind = f, malformed
			tr.HasValue = malformed != MalformedNaN && malformed != MalformedEmpty
		}
	}
	s.lastNow = now
	if normal {
		ts = g.stamp(s, now)
	}
	tr.TS = time.Unix(0, ts*res).UTC()
	tr.Value = clampFinite(tr.Value)

	start := len(dst)
	dst = append(dst, s.frag[0]...)
	if g.sh.tsFirst {
		dst = g.sh.appendTS(dst, ts)
		dst = append(dst, s.frag[1]...)
		dst = appendValue(dst, tr.Value, malformed)
	} else {
		dst = appendValue(dst, tr.Value, malformed)
		dst = append(dst, s.frag[1]...)
		dst = g.sh.appendTS(dst, ts)
	}
	dst = append(dst, s.frag[2]...)
	switch malformed {
	case MalformedInvalidJSON:
		dst[start+bytes.IndexByte(dst[start:], ':')] = '='
	case MalformedTruncated:
		dst = dst[:start+1+s.errs.IntN(len(dst)-start-1)]
	case MalformedEmpty:
		dst = dst[:start]
	}
	g.seq++
	tr.Seq = g.seq
	m := Message{Topic: s.topic, Payload: dst[start:], Truth: tr, Sensor: i}
	if g.dup.pending {
		g.dup.topic, g.dup.truth, g.dup.sensor = m.Topic, tr, i
		g.dup.payload = append(g.dup.payload[:0], m.Payload...)
	}
	return m, true
}

// emitDup returns the copy of the last message, labelled duplicate.
func (g *Generator) emitDup(dst []byte) Message {
	g.dup.pending = false
	start := len(dst)
	dst = append(dst, g.dup.payload...)
	g.seq++
	tr := g.dup.truth
	tr.Fault, tr.DupOf, tr.Seq = FaultDuplicate, tr.Seq, g.seq
	return Message{Topic: g.dup.topic, Payload: dst[start:], Truth: tr, Sensor: g.dup.sensor}
}

// stamp returns now in resolution units, for a message without a timestamp fault: strictly after the
// sensor's previous one at µs and ms resolution.
func (g *Generator) stamp(s *simSensor, now time.Time) int64 {
	u := floorDiv(now.UnixNano(), int64(g.sh.res))
	if g.sh.res <= time.Millisecond && u <= s.lastTS {
		u = s.lastTS + 1
	}
	s.lastTS = max(s.lastTS, u)
	return u
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// clampFinite keeps huge registry ranges from producing values JSON cannot hold.
func clampFinite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case v > math.MaxFloat64/2:
		return math.MaxFloat64 / 2
	case v < -math.MaxFloat64/2:
		return -math.MaxFloat64 / 2
	}
	return v
}
