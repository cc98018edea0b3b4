// Package harness runs the processes the benchmark and chaos commands measure: the sluice binary
// (built from ./cmd/sluice, started on free ports, found by its "sluice ready" log line, scraped on
// /metrics, killed with SIGKILL or stopped with SIGTERM) and a bare mochi-mqtt broker (the embedded
// broker's library without sluice, as the ceiling when Mosquitto is absent); the scratch workspace a
// command runs in; and a process's peak resident memory (VmHWM in /proc/<pid>/status).
//
// It owns those child processes and nothing else: it never touches sluice's data directory, and
// knows sluice only through its command line, its log lines and its metrics, as an operator would.
//
// # Goroutines
//
// Each started process has one goroutine that reads its stderr (keeping the log, and finding the
// ready line) and then waits for it to exit; everything else runs on the caller's goroutine. A Proc's
// methods may be called from any goroutine.
//
// # What comes from internal/testkit
//
// A private Mosquitto (testkit.RunMosquitto), free ports, polling, the repository root: testkit has
// each in a form that returns an error, which a command needs (it reports a failed scenario and goes
// on to the next), beside the form a test uses.
package harness
