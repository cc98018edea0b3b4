package app

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sluice-project/sluice/internal/broker"
	"github.com/sluice-project/sluice/internal/config"
	"github.com/sluice-project/sluice/internal/decode"
	"github.com/sluice-project/sluice/internal/httpapi"
	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/log/wal"
	"github.com/sluice-project/sluice/internal/pipeline"
	"github.com/sluice-project/sluice/internal/query"
	"github.com/sluice-project/sluice/internal/sensor"
	"github.com/sluice-project/sluice/internal/simulate"
	"github.com/sluice-project/sluice/internal/source/mqtt"
)

// Config is sluice's whole configuration: one section per component.
type Config struct {
	DataDir  string               `yaml:"data_dir" doc:"Directory for the local log and, unless lake.url says otherwise, the lake (./sluice-data: wal/ and lake/ inside)."`
	Logging  LoggingConfig        `yaml:"logging"`
	Runtime  RuntimeConfig        `yaml:"runtime" doc:"The Go runtime of the sluice process."`
	MQTT     mqtt.Config          `yaml:"mqtt" doc:"External MQTT broker to subscribe to. When mqtt.broker is empty, sluice runs its embedded broker (section broker) instead."`
	Broker   broker.Config        `yaml:"broker" doc:"The embedded MQTT broker, used when mqtt.broker is empty."`
	WAL      wal.Config           `yaml:"wal" doc:"The durable local log every message is appended to before it is acknowledged."`
	Lake     lake.Config          `yaml:"lake" doc:"The data lake: raw/, readings/, quarantine/, sensors/ as Delta Lake tables of Parquet files."`
	Sensors  sensor.Config        `yaml:"sensors" doc:"The sensor registry: ranges, units and expected intervals. Unknown sensors are kept and flagged."`
	Decode   decode.Config        `yaml:"decode" doc:"How payloads become readings. The four common shapes decode with no configuration."`
	Dedup    pipeline.DedupConfig `yaml:"dedup" doc:"Duplicate removal on (sensor_id, metric, ts) before readings/ is written."`
	HTTP     httpapi.Config       `yaml:"http" doc:"HTTP listener: /healthz, /readyz, /metrics, and the SQL API (POST /api/v1/query)."`
	Query    query.Config         `yaml:"query" doc:"SQL over the lake and the readings not yet committed: HTTP, the PostgreSQL protocol, sluice query."`
	Simulate simulate.Config      `yaml:"simulate" doc:"The sensor simulator (sluice simulate, and sluice run --simulate)."`
}

// LoggingConfig sets sluice's own log output.
type LoggingConfig struct {
	Level  string `yaml:"level" doc:"debug, info, warn or error."`
	Format string `yaml:"format" doc:"text or json."`
}

// RuntimeConfig tunes the Go runtime sluice runs on.
type RuntimeConfig struct {
	MemoryLimit config.Bytes `yaml:"memory_limit" doc:"Soft limit on the memory the Go runtime holds (runtime/debug.SetMemoryLimit): near it the garbage collector runs more often, so the heap does not grow to twice what is live. 0 turns it off. The GOMEMLIMIT environment variable, when set, wins. DuckDB's memory (query.memory_limit) is not part of it; a limit below what sluice keeps live (buffered rows: lake.flush_rows, lake.flush_bytes, twice over while a commit runs; dedup.max_keys; broker.receive_maximum per publishing connection) makes the collector run without pause and costs ingest throughput. Measured with 100,000 sensors at QoS 1 through the embedded broker from 32 connections for 40s, defaults otherwise, two runs each, alternately, in one session (live heap ~310 MB): 384MiB: 57,300-63,700 msg/s, peak RSS 642-648MiB; 512MiB: 57,000-66,500 msg/s, 759-766MiB. Again after the SQL engine kept hot rows compressed (live heap ~300 MB): 320MiB: 52,100-59,300 msg/s, 485-492MiB; 384MiB: 56,400-63,100 msg/s, 562-568MiB. Again with the decoder's per-sensor tables smaller (live heap ~230 MB): 320MiB: 57,200-58,100 msg/s, 471-488MiB; 384MiB: 60,900-65,200 msg/s, 522-526MiB. To bound memory further, lower lake.flush_rows and lake.flush_bytes with it."`
}

// Validate implements config.Validator.
func (c RuntimeConfig) Validate() config.Errors {
	var es config.Errors
	es.Check(c.MemoryLimit == 0 || c.MemoryLimit >= 32<<20, "memory_limit", fmt.Sprintf("%s is below 32MiB", c.MemoryLimit), "use 0 (no limit) or a size such as 1GiB")
	return es
}

// Validate implements config.Validator.
func (c LoggingConfig) Validate() config.Errors {
	var es config.Errors
	switch strings.ToLower(c.Level) {
	case "debug", "info", "warn", "error":
	default:
		es.Add("level", fmt.Sprintf("%q is not a level", c.Level), "use debug, info, warn or error")
	}
	es.Check(c.Format == "text" || c.Format == "json", "format", fmt.Sprintf("%q is not a format", c.Format), "use text or json")
	return es
}

// DefaultConfig returns every component's defaults: the embedded broker on 127.0.0.1:1883, the lake
// and log under ./sluice-data, HTTP on 127.0.0.1:8080.
func DefaultConfig() Config {
	return Config{
		DataDir:  "./sluice-data",
		Logging:  LoggingConfig{Level: "info", Format: "text"},
		Runtime:  RuntimeConfig{MemoryLimit: 384 << 20},
		MQTT:     mqtt.DefaultConfig(),
		Broker:   broker.DefaultConfig(),
		WAL:      wal.DefaultConfig(),
		Lake:     lake.DefaultConfig(),
		Sensors:  sensor.DefaultConfig(),
		Decode:   decode.DefaultConfig(),
		Dedup:    pipeline.DefaultDedupConfig(),
		HTTP:     httpapi.DefaultConfig(),
		Query:    query.DefaultConfig(),
		Simulate: simulate.DefaultConfig(),
	}
}

// Validate implements config.Validator for rules that span components.
func (c *Config) Validate() config.Errors {
	var es config.Errors
	es.Check(c.DataDir != "", "data_dir", "is empty", "set a directory, e.g. ./sluice-data")
	es.Check(c.MQTT.Broker != "" || c.Broker.Listen != "" || c.Broker.WebsocketListen != "" || c.Broker.TLS.Listen != "",
		"broker.listen", "no way in for messages: mqtt.broker is empty and the embedded broker has no listener",
		"set mqtt.broker to an external broker URL, or broker.listen to an address such as 127.0.0.1:1883")
	return es
}

// Resolve fills settings derived from others: the WAL directory and lake URL under data_dir.
func (c *Config) Resolve() error {
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data_dir %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.WAL.Dir == "" {
		c.WAL.Dir = filepath.Join(abs, "wal")
	}
	if c.Lake.URL == "" {
		c.Lake.URL = "file://" + filepath.ToSlash(filepath.Join(abs, "lake"))
	}
	return nil
}
