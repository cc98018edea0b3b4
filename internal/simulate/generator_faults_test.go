package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/sensor"
)

// TestFaultRates generates 100k slots with every fault enabled and checks, message by message, that
// the truth says what the payload shows, and that each fault's rate is within 4.5 standard deviations
// of its probability per draw.
func TestFaultRates(t *testing.T) {
	p := FaultsConfig{Spike: 0.01, Stuck: 0.005, Gap: 0.005, Duplicate: 0.02, Late: 0.01, OutOfOrder: 0.01, Malformed: 0.02}
	cfg := DefaultConfig()
	cfg.Faults, cfg.Seed, cfg.Fleet = p, 42, 20
	const period = 20 * time.Second // each sensor's interval: 20 sensors, a slot every second
	cfg.Interval = period
	g, err := NewGenerator(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

	type last struct {
		slotAt time.Time
		msg    Message
		stuck  int  // length of the current stuck run
		ooo    bool // the first of a swapped pair was the last message
	}
	prev := map[string]*last{}
	episodes := map[Fault]int{}
	labelled := map[Fault]int{}
	var stuckCont, gapResume, missedTotal, oooSecond, messages int
	var bySeq []Message
	const slots = 100_000
	for i := range slots {
		at := start.Add(time.Duration(i) * time.Second)
		m, ok := g.Slot(nil, at)
		if !ok {
			continue
		}
		msgs := []Message{m}
		if g.Pending() {
			msgs = append(msgs, g.Next(nil, at))
		}
		for _, m := range msgs {
			messages++
			bySeq = append(bySeq, m)
			tr := m.Truth
			if tr.Seq != int64(len(bySeq)) {
				t.Fatalf("seq %d, want %d", tr.Seq, len(bySeq))
			}
			labelled[tr.Fault]++
			s := g.sensors[m.Sensor]
			pv := prev[tr.SensorID]
			if pv == nil {
				pv = &last{}
				prev[tr.SensorID] = pv
			}
			checkMessage(t, s.lo, s.hi, at, m)
			switch tr.Fault {
			case FaultSpike:
				episodes[FaultSpike]++
			case FaultStuck:
				if pv.msg.Truth.Fault == FaultStuck && pv.msg.Truth.Value == tr.Value && pv.stuck < 30 {
					stuckCont++
					pv.stuck++
				} else {
					if pv.msg.Truth.Fault == FaultStuck && pv.stuck < 5 {
						t.Fatalf("stuck run of %d messages, want 5 to 30", pv.stuck)
					}
					episodes[FaultStuck]++
					pv.stuck = 1
				}
			case FaultGap:
				episodes[FaultGap]++
				gapResume++
				missedTotal += tr.Missed
				if tr.Missed < 3 || tr.Missed > 10 {
					t.Fatalf("gap of %d intervals, want 3 to 10", tr.Missed)
				}
				if got := at.Sub(pv.slotAt); got != time.Duration(tr.Missed+1)*period {
					t.Fatalf("gap of %d intervals, yet %v since the sensor's last message", tr.Missed, got)
				}
			case FaultDuplicate:
				episodes[FaultDuplicate]++
				orig := bySeq[tr.DupOf-1]
				if tr.DupOf != tr.Seq-1 || !bytes.Equal(orig.Payload, m.Payload) || orig.Topic != m.Topic || orig.Truth.Fault != FaultNone {
					t.Fatalf("duplicate %d of %d: %q vs %q", tr.Seq, tr.DupOf, m.Payload, orig.Payload)
				}
			case FaultLate:
				episodes[FaultLate]++
			case FaultOutOfOrder:
				if pv.ooo {
					oooSecond++
					pv.ooo = false
					if want := pv.slotAt.Truncate(time.Microsecond); !tr.TS.Equal(want) {
						t.Fatalf("second of a swapped pair has ts %v, want the first's time %v", tr.TS, want)
					}
				} else {
					episodes[FaultOutOfOrder]++
					pv.ooo = true
					if want := at.Add(period); !tr.TS.Equal(want) {
						t.Fatalf("first of a swapped pair has ts %v, want the next one's %v", tr.TS, want)
					}
				}
			case FaultMalformed:
				episodes[FaultMalformed]++
			}
			if tr.Fault != FaultDuplicate {
				pv.slotAt = at
			}
			if tr.Fault != FaultStuck {
				pv.stuck = 0
			}
			pv.msg = m
		}
	}
	// Every slot either drew a fault (or none), or was taken by a fault in progress.
	draws := slots - stuckCont - (missedTotal - episodes[FaultGap]) - gapResume - oooSecond
	for _, f := range cfg.Faults.list() {
		want := f.p * float64(draws)
		sd := math.Sqrt(float64(draws) * f.p * (1 - f.p))
		got := float64(episodes[f.fault])
		if math.Abs(got-want) > 4.5*sd {
			t.Errorf("%s: %v episodes in %d draws, want %.0f ± %.0f", f.fault, got, draws, want, 4.5*sd)
		}
	}
	if int64(labelled[FaultStuck]) != int64(episodes[FaultStuck]+stuckCont) || labelled[FaultOutOfOrder] != episodes[FaultOutOfOrder]+oooSecond {
		t.Fatalf("labels and episodes disagree: %v %v", labelled, episodes)
	}
	// Gaps still open at the end are silent slots no message has reported yet.
	if g.silentSlots < int64(missedTotal) || g.silentSlots > int64(missedTotal)+10*20 {
		t.Fatalf("%d silent slots, truth reports %d", g.silentSlots, missedTotal)
	}
	t.Logf("%d messages in %d slots, %d draws; episodes %v", messages, slots, draws, episodes)
}

// checkMessage checks that m's payload says what its truth says.
func checkMessage(t *testing.T, lo, hi float64, at time.Time, m Message) {
	t.Helper()
	tr := m.Truth
	if tr.Fault == FaultMalformed {
		switch tr.Kind {
		case MalformedEmpty:
			if len(m.Payload) != 0 || tr.HasValue {
				t.Fatalf("empty: %q", m.Payload)
			}
		case MalformedWrongType:
			var v map[string]any
			if err := json.Unmarshal(m.Payload, &v); err != nil {
				t.Fatalf("wrong_type must stay valid JSON: %q", m.Payload)
			}
			if _, ok := v["value"].(string); !ok {
				t.Fatalf("wrong_type value is %T", v["value"])
			}
		case MalformedNaN:
			if json.Valid(m.Payload) || !bytes.Contains(m.Payload, []byte(":NaN")) || tr.HasValue {
				t.Fatalf("nan: %q", m.Payload)
			}
		case MalformedInvalidJSON, MalformedTruncated:
			if json.Valid(m.Payload) || len(m.Payload) == 0 {
				t.Fatalf("%s: %q is valid", tr.Kind, m.Payload)
			}
		default:
			t.Fatalf("malformed kind %q", tr.Kind)
		}
		return
	}
	var p struct {
		SensorID  string  `json:"sensor_id"`
		Timestamp string  `json:"timestamp"`
		Value     float64 `json:"value"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("%s: %q: %v", tr.Fault, m.Payload, err)
	}
	ts, err := time.Parse(isoMicro, p.Timestamp)
	if err != nil || !ts.Equal(tr.TS) || p.Value != tr.Value || p.SensorID != tr.SensorID {
		t.Fatalf("payload %s disagrees with truth %+v", m.Payload, tr)
	}
	switch tr.Fault {
	case FaultSpike:
		w := hi - lo
		if tr.Value > lo-2*w && tr.Value < hi+2*w {
			t.Fatalf("spike %v is not 3–10 widths away from [%v, %v]", tr.Value, lo, hi)
		}
	case FaultLate:
		if d := at.Sub(tr.TS); d < time.Minute || d > 10*time.Minute {
			t.Fatalf("late by %v, want 1 to 10 minutes", d)
		}
	case FaultNone, FaultStuck, FaultGap, FaultDuplicate, FaultOutOfOrder:
		if tr.Value < lo || tr.Value > hi {
			t.Fatalf("%q value %v outside [%v, %v]", tr.Fault, tr.Value, lo, hi)
		}
		if tr.Fault != FaultDuplicate && tr.Fault != FaultOutOfOrder && !tr.TS.Equal(at) {
			t.Fatalf("%q ts %v, want the slot's %v", tr.Fault, tr.TS, at)
		}
	}
}

func TestTruthJSON(t *testing.T) {
	cases := []struct {
		name string
		tr   Truth
		want string
	}{
		{"plain", Truth{Seq: 1, SensorID: "Sensor 1", Metric: "temperature", TS: time.Date(2026, 11, 22, 17, 40, 25, 123456000, time.UTC), Value: 23.17, HasValue: true, Topic: "sensors"},
			`{"seq":1,"sensor_id":"Sensor 1","metric":"temperature","ts":"2026-11-22T17:40:25.123456Z","value":23.17,"fault":"","topic":"sensors"}`},
		{"gap", Truth{Seq: 9, SensorID: "a", Metric: "v", TS: time.Unix(1, 0), Value: -1, HasValue: true, Fault: FaultGap, Missed: 4, Topic: "t"},
			`{"seq":9,"sensor_id":"a","metric":"v","ts":"1970-01-01T00:00:01Z","value":-1,"fault":"gap","missed":4,"topic":"t"}`},
		{"nan", Truth{Seq: 2, SensorID: "a", Metric: "v", TS: time.Unix(0, 0), Fault: FaultMalformed, Kind: MalformedNaN, Topic: "t"},
			`{"seq":2,"sensor_id":"a","metric":"v","ts":"1970-01-01T00:00:00Z","value":null,"fault":"malformed","kind":"nan","topic":"t"}`},
		{"duplicate", Truth{Seq: 3, SensorID: "a", Metric: "v", TS: time.Unix(0, 0), Value: 1.5, HasValue: true, Fault: FaultDuplicate, DupOf: 2, Topic: "t"},
			`{"seq":3,"sensor_id":"a","metric":"v","ts":"1970-01-01T00:00:00Z","value":1.5,"fault":"duplicate","dup_of":2,"topic":"t"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(c.tr.AppendJSON(nil)); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	t.Run("escaping", func(t *testing.T) {
		for _, id := range []string{`a"b`, `back\slash`, "ctl\x01\n\t", "bad\xffutf8", "ünï ✓", "</script>"} {
			tr := Truth{SensorID: id, Metric: id, Topic: id, TS: time.Unix(0, 0)}
			b := tr.AppendJSON(nil)
			var back struct {
				SensorID string `json:"sensor_id"`
			}
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("%q: %s: %v", id, b, err)
			}
			want := viaJSON(id)
			if back.SensorID != want {
				t.Fatalf("%q came back as %q", id, back.SensorID)
			}
		}
	})
}

func TestFleet(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Fleet, cfg.Seed = 12, 3
	reg, err := Sensors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Len() != 12 {
		t.Fatalf("%d sensors, want 12", reg.Len())
	}
	builtin, _ := sensor.Builtin()
	for k := 1; k <= 12; k++ {
		tmpl := builtin.Sensors()[(k-1)%5]
		id := fmt.Sprintf("%s-%05d", tmpl.ID, k)
		s := reg.Lookup(id)
		if s == nil {
			t.Fatalf("no sensor %q", id)
		}
		if s.Type != tmpl.Type || s.Unit != tmpl.Unit || s.Min != tmpl.Min || s.Max != tmpl.Max || s.Description != tmpl.Description {
			t.Fatalf("%q does not copy its template: %+v", id, s)
		}
		if math.Abs(s.Lat-tmpl.Lat) > 0.5 || math.Abs(s.Lng-tmpl.Lng) > 0.5 || !s.HasLocation {
			t.Fatalf("%q moved too far: %v,%v from %v,%v", id, s.Lat, s.Lng, tmpl.Lat, tmpl.Lng)
		}
	}
	again, _ := Sensors(cfg)
	if again.Digest() != reg.Digest() {
		t.Fatal("same seed, different fleet")
	}
}

func TestTopics(t *testing.T) {
	cases := []struct {
		tmpl, id, metric string
		i                int
		want             string
	}{
		{"sensors/{sensor}", "Sensor 3", "temperature", 2, "sensors/Sensor_3"},
		{"plant/{site}/{line}/{sensor}/{metric}", "pump-07", "temperature", 10, "plant/a/line2/pump-07/temperature"},
		{"plant/{site}/{line}/{sensor}", "x", "t", 39, "plant/a/line4/x"},
		{"plant/{site}/{line}/{sensor}", "x", "t", 40, "plant/b/line1/x"},
		{"{site}", "x", "t", 40 * 26, "aa"},
		{"{site}", "x", "t", 40 * 27, "ab"},
		{"s/{sensor}", "a/b+c#d e", "t", 0, "s/a_b_c_d_e"},
		{"fixed", "x", "t", 0, "fixed"},
	}
	for _, c := range cases {
		site, line := siteLine(c.i)
		if got := expandTopic(c.tmpl, c.id, c.metric, site, line); got != c.want {
			t.Errorf("expandTopic(%q, %q, sensor %d) = %q, want %q", c.tmpl, c.id, c.i, got, c.want)
		}
	}
}
