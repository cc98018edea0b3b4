package simulate

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// Shapes the simulator publishes: one per line of testdata/fixtures/payload-variants.ndjson.
const (
	ShapeNested     = "nested"      // {"sensor_id","timestamp" (ISO, µs, no zone: UTC),"value","metadata":{…}} on "sensors"
	ShapeFlatUnix   = "flat-unix"   // {"sensor_id","type","value","unit","location","timestamp" (Unix s)} on "sensors/{sensor}"
	ShapeMetricType = "metric-type" // {"sensor_id","timestamp" (ISO, µs, Z),"metric_type","value"} on "sensor-data"
	ShapeTopicMS    = "topic-ms"    // {"ts" (Unix ms),"v"} on "plant/{site}/{line}/{sensor}/{metric}"
)

// Shapes lists every shape name, in fixture order.
var Shapes = []string{ShapeNested, ShapeFlatUnix, ShapeMetricType, ShapeTopicMS}

// Config is the simulator's configuration (section "simulate").
type Config struct {
	Broker       string        `yaml:"broker" doc:"MQTT broker URL: mqtt:// or tcp:// (plain), mqtts://, ssl:// or tls:// (TLS, system roots), ws:// or wss:// (websocket). sluice run --simulate replaces it with its own broker."`
	Sensors      string        `yaml:"sensors" doc:"sensors.json in either shape whose sensors are simulated (type, unit, range, location). \"\" = the five built-in demonstration sensors (sluice run --simulate uses sensors.file)."`
	Fleet        int           `yaml:"fleet" doc:"When > 0, simulate this many sensors made from the file's sensors as templates, with ids \"<template id>-00001\", \"-00002\"…; 0 = exactly the file's sensors."`
	Interval     time.Duration `yaml:"interval" doc:"How often each sensor publishes (phases spread evenly, so the total rate is sensors/interval). Ignored when rate is set."`
	Rate         float64       `yaml:"rate" doc:"When > 0, the total messages per second to publish instead (load tests), round-robin over the sensors. 0 = use interval."`
	Shape        string        `yaml:"shape" doc:"Message shape: nested, flat-unix, metric-type or topic-ms (the four lines of testdata/fixtures/payload-variants.ndjson)."`
	Topic        string        `yaml:"topic" doc:"Topic template overriding the shape's own; placeholders {sensor} (id, with spaces and / + # as _), {metric}, {site}, {line}. \"\" = the shape's topic."`
	QoS          int           `yaml:"qos" doc:"MQTT QoS, 0 or 1. At 1 a message counts as published once the broker acknowledged it."`
	Connections  int           `yaml:"connections" doc:"MQTT connections to publish from; sensor i always publishes on connection i mod connections, so each sensor's messages stay in order."`
	Inflight     int           `yaml:"inflight" doc:"Most QoS 1 messages awaiting their acknowledgement per connection; publishing waits beyond it."`
	Count        int64         `yaml:"count" doc:"Stop after publishing this many messages (duplicates included). 0 = no limit."`
	Duration     time.Duration `yaml:"duration" doc:"Stop after this long. 0 = no limit (until interrupted)."`
	Seed         int64         `yaml:"seed" doc:"Random seed: the same seed gives the same random walks, noise and faults per sensor (the daily cycle follows the clock)."`
	Truth        string        `yaml:"truth" doc:"File to write the ground truth to: one JSON line per published message (seq, sensor_id, metric, ts, value, fault, topic). \"\" = none."`
	ClientID     string        `yaml:"client_id" doc:"MQTT client id prefix; each connection is <prefix>-<random>-<n>."`
	Username     string        `yaml:"username" doc:"MQTT username. \"\" = none."`
	Password     string        `yaml:"password" doc:"MQTT password." secret:"true"`
	DrainTimeout time.Duration `yaml:"drain_timeout" doc:"At the end (count or duration reached), how long to wait for outstanding acknowledgements before giving up on them."`
	Faults       FaultsConfig  `yaml:"faults" doc:"Faults to inject, each a probability per message (0 to 1, their sum at most 1). The truth file labels every affected message."`
}

// FaultsConfig holds the probability per message of each fault.
type FaultsConfig struct {
	Spike      float64 `yaml:"spike" doc:"A value far outside the normal band: ±3 to 10 times the range width."`
	Stuck      float64 `yaml:"stuck" doc:"The sensor repeats one value for a run of 5 to 30 messages (each labelled stuck)."`
	Gap        float64 `yaml:"gap" doc:"The sensor goes silent for 3 to 10 intervals; its next message is labelled gap, with the number missed."`
	Duplicate  float64 `yaml:"duplicate" doc:"The message is published twice, byte for byte; the copy is labelled duplicate."`
	Late       float64 `yaml:"late" doc:"The timestamp is 1 to 10 minutes in the past."`
	OutOfOrder float64 `yaml:"out_of_order" doc:"The timestamp is swapped with the sensor's next message's (both labelled out_of_order)."`
	Malformed  float64 `yaml:"malformed" doc:"The payload is broken: invalid JSON, a value of the wrong type, NaN, empty, or truncated."`
}

// DefaultConfig returns the defaults: the five built-in sensors, each publishing once a second in the
// nested shape at QoS 1 from one connection to mqtt://127.0.0.1:1883, until interrupted, with no faults.
func DefaultConfig() Config {
	return Config{
		Broker:       "mqtt://127.0.0.1:1883",
		Interval:     time.Second,
		Shape:        ShapeNested,
		QoS:          1,
		Connections:  1,
		Inflight:     1000,
		ClientID:     "sluice-sim",
		DrainTimeout: 30 * time.Second,
	}
}

// brokerSchemes are the URL schemes paho.mqtt.golang dials (netconn.go).
var brokerSchemes = map[string]bool{"mqtt": true, "tcp": true, "mqtts": true, "ssl": true, "tls": true, "tcps": true, "ws": true, "wss": true}

// Validate implements config.Validator.
func (c Config) Validate() config.Errors {
	var es config.Errors
	if u, err := url.Parse(c.Broker); err != nil || !brokerSchemes[u.Scheme] || u.Host == "" {
		es.Add("broker", fmt.Sprintf("%q is not a broker URL", c.Broker), "write it as mqtt://host:1883 (or tcp://, mqtts://, ws://host:port/mqtt)")
	}
	if c.Sensors != "" {
		if _, err := os.Stat(c.Sensors); err != nil {
			es.Add("sensors", fmt.Sprintf("cannot read %s: %v", c.Sensors, err), "point it at an existing sensors.json, or set it to \"\" for the built-in sensors")
		}
	}
	es.Check(c.Fleet >= 0, "fleet", fmt.Sprintf("%d is negative", c.Fleet), "use 0 for the file's sensors, or a number of sensors to synthesise")
	es.Check(c.Interval > 0, "interval", fmt.Sprintf("%s is not positive", c.Interval), "use a duration such as 1s")
	es.Check(c.Rate >= 0 && !math.IsNaN(c.Rate) && !math.IsInf(c.Rate, 0) && c.Rate <= 1e7, "rate", fmt.Sprintf("%v is not a rate", c.Rate), "use messages per second between 0 (use interval) and 10000000")
	if _, ok := shapes[c.Shape]; !ok {
		es.Add("shape", fmt.Sprintf("%q is not a shape", c.Shape), "use one of "+strings.Join(Shapes, ", "))
	}
	if c.Topic != "" {
		if err := checkTopic(c.Topic); err != nil {
			es.Add("topic", err.Error(), "write a topic such as sensors/{sensor}/{metric}, without + or #")
		}
	}
	if c.Shape == ShapeTopicMS {
		topic := c.Topic
		if topic == "" {
			topic = shapes[ShapeTopicMS].topic
		}
		es.Check(strings.Contains(topic, "{sensor}") && strings.Contains(topic, "{metric}"), "topic",
			"the topic-ms payload carries neither sensor id nor metric, so its topic must hold {sensor} and {metric}", "add {sensor} and {metric} to the template, or use another shape")
	}
	es.Check(c.QoS == 0 || c.QoS == 1, "qos", fmt.Sprintf("%d is not supported", c.QoS), "use 0 or 1")
	es.Check(c.Connections >= 1 && c.Connections <= 10000, "connections", fmt.Sprintf("%d is out of range", c.Connections), "use 1 to 10000")
	es.Check(c.Inflight >= 1 && c.Inflight <= 20000, "inflight", fmt.Sprintf("%d is out of range", c.Inflight), "use 1 to 20000 (default 1000)")
	es.Check(c.Count >= 0, "count", fmt.Sprintf("%d is negative", c.Count), "use 0 for no limit, or a number of messages")
	es.Check(c.Duration >= 0, "duration", fmt.Sprintf("%s is negative", c.Duration), "use 0 for no limit, or a duration such as 1m")
	es.Check(c.DrainTimeout >= 0, "drain_timeout", fmt.Sprintf("%s is negative", c.DrainTimeout), "use a duration such as 30s")
	if c.Truth != "" {
		if st, err := os.Stat(filepath.Dir(c.Truth)); err != nil || !st.IsDir() {
			es.Add("truth", fmt.Sprintf("directory of %s does not exist", c.Truth), "create the directory, or set truth to \"\"")
		}
	}
	es.Check(c.ClientID != "" && !strings.ContainsAny(c.ClientID, "+#/ "), "client_id", fmt.Sprintf("%q is not a client id prefix", c.ClientID), "use letters, digits, - and _, e.g. sluice-sim")
	es.Check(c.Password == "" || c.Username != "", "username", "password is set without username", "set username too, or clear password")
	es.Nest("faults", c.Faults.Validate())
	return es
}

// Validate implements config.Validator.
func (f FaultsConfig) Validate() config.Errors {
	var es config.Errors
	sum := 0.0
	for _, p := range f.list() {
		ok := p.p >= 0 && p.p <= 1 && !math.IsNaN(p.p)
		es.Check(ok, p.key, fmt.Sprintf("%v is not a probability", p.p), "use a number from 0 to 1, e.g. 0.001")
		if ok {
			sum += p.p
		}
	}
	es.Check(sum <= 1+1e-9, "", fmt.Sprintf("the probabilities add up to %v, more than 1", sum), "lower them: each message carries at most one fault")
	return es
}

type faultP struct {
	key   string
	fault Fault
	p     float64
}

// list returns the faults in the order they are drawn.
func (f FaultsConfig) list() []faultP {
	return []faultP{
		{"spike", FaultSpike, f.Spike}, {"stuck", FaultStuck, f.Stuck}, {"gap", FaultGap, f.Gap},
		{"duplicate", FaultDuplicate, f.Duplicate}, {"late", FaultLate, f.Late},
		{"out_of_order", FaultOutOfOrder, f.OutOfOrder}, {"malformed", FaultMalformed, f.Malformed},
	}
}

// checkTopic rejects topic templates that cannot be published to.
func checkTopic(t string) error {
	switch {
	case strings.ContainsAny(t, "+#"):
		return fmt.Errorf("%q holds a wildcard (+ or #), which cannot be published to", t)
	case strings.ContainsRune(t, 0):
		return fmt.Errorf("%q holds a NUL character", t)
	case len(t) > 60000:
		return fmt.Errorf("topic template is %d bytes long", len(t))
	}
	rest := t
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("%q has an unclosed {", t)
		}
		if name := rest[i+1 : i+j]; !placeholders[name] {
			return fmt.Errorf("%q has an unknown placeholder {%s}", t, name)
		}
		rest = rest[i+j+1:]
	}
	return nil
}

var placeholders = map[string]bool{"sensor": true, "metric": true, "site": true, "line": true}
