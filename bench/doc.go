// Command bench measures sluice's speed and cost with one command and writes the figures, with the
// machine they were taken on, to bench/RESULTS.md:
//
//	go run ./bench                 # everything, about 7 minutes
//	go run ./bench -quick          # seconds: the version `go test ./bench` runs
//	go run ./bench -only inprocess,storage -runs 5
//
// Every figure is taken -runs times and reported as min / median / max; a target's verdict is taken
// on the median.
//
// # What is measured, and how
//
//   - broker: the broker's ceiling and sluice through the same broker, at QoS 0 and 1. The publisher
//     is the simulator (internal/simulate, unpaced: rate 10M/s) from 4 connections, a fleet of 10,000
//     sensors in the default (nested) payload shape. The ceiling is a plain paho subscriber that counts
//     what the broker delivers; sluice is the real binary subscribed to the same broker with its
//     defaults (QoS as measured, lake commits every second instead of every minute so that a run of
//     seconds lands in the lake). Each phase gets a fresh broker, so no session of an earlier phase
//     queues messages. The rate compared is the sustained one: the slope of the count (the
//     subscriber's, or sluice's decoder records) between 10% and 90% of the messages, the same
//     definition on both sides; the ratio is taken within each run. sluice's lake is then read back
//     with DuckDB: readings in the lake and lost (published but not in readings/, must be 0 at QoS 1)
//     are counted, not assumed. The CPU time each process used (rusage of the children, this
//     process's own for the publisher) is reported per message. Brokers: a private Mosquitto when
//     installed, and the embedded broker, whose ceiling is a bare mochi-mqtt (the embedded broker's
//     library without sluice) in a child process and whose "sluice" is sluice's own embedded broker
//     with publishers connected to it, measured also with broker.pipeline off (one message per
//     commit per connection).
//   - inprocess: no network. Messages from the simulator's Generator are encoded as envelopes before
//     the clock starts; then they are appended to a real WAL (fsync on) with AppendAsync in batches of
//     1,024 while the archiver and decoder stages run on it, writing a file:// lake with the default
//     lake settings; the clock stops when both have committed everything. Per stage it also reports
//     how many records the stage had yet to process when the last append was durable, and how long
//     after that its last commit came: what the pipeline takes beyond the appends; and the process's CPU
//     time per reading over each run (getrusage), with the rate the cores could sustain at that cost
//     (the CPU budget: whether the target needs less work or more parallelism). A first run, before the
//     measured ones, is reported on its own row: its heap grows from nothing. One more run is profiled
//     with CPU samples labelled by stage (pprof labels on the runner and WAL goroutines), and the
//     profile's split by stage and its top functions go into RESULTS.md.
//   - freshness: publish → visible in SQL. The simulator publishes each of 200 sensors once a second
//     to `sluice run`, the payload's timestamp being its publish time; a client polls POST
//     /api/v1/query every 20ms and records, per reading, when it first sees it. Without the query
//     engine (internal/query) the section says "not measured".
//   - storage: 1 Hz random-walk readings of the default shape (simulator, built-in sensor templates),
//     files cut every simulated minute (flush_rows = sensors x 60, as the default flush_interval of a
//     minute would at that rate), through the archiver and decoder; bytes of the committed raw/ and
//     readings/ files (sizes from the Delta log) per reading.
//   - memory: peak RSS (VmHWM) of the sluice binary with its embedded broker and default
//     configuration, a registry of 10,000 or 100,000 sensors, and the simulator publishing at QoS 1 as
//     fast as sluice acknowledges from 32 connections, for 40 seconds (-memory-duration: the
//     deduplication window takes 2 minutes to fill). At the highest once-a-second VmRSS sample it
//     also splits the RSS into what the Go runtime holds (from /metrics) and the rest (DuckDB, the
//     binary's pages, C allocations), so a reader sees which side to work on.
//
// Correctness figures (nothing lost) fail the command (exit 1) when missed in any run; performance
// targets are reported as pass or FAIL on the median and do not change the exit code.
//
// # Goroutines
//
// main runs the measurements one after another on its goroutine; a measurement may start a sampler
// goroutine (polling a counter: sluice's /metrics every 200ms, other counters more often) and the simulator's own, and waits for all of them before
// it returns. Child processes are owned by package harness.
//
// # Written here
//
// The plain subscriber is paho.mqtt.golang with a buffered reader under it (paho reads a packet with
// three or more read(2)s otherwise, which would make the "ceiling" paho's, not the broker's). The
// statistics (min, median, max; a slope between two thresholds) are a few lines; the report is plain
// Markdown.
package main
