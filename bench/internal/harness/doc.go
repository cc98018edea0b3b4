// Package harness runs the processes the benchmark and chaos commands measure: the sluice binary
// (built from ./cmd/sluice, started on free ports, found by its "sluice ready" log line, scraped on
// /metrics, killed with SIGKILL or stopped with SIGTERM), a private Mosquitto, and a bare mochi-mqtt
// broker (the embedded broker's library without sluice, as the ceiling when Mosquitto is absent). It
// also reads a process's peak resident memory (VmHWM in /proc/<pid>/status).
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
// # Why not internal/testkit
//
// testkit's helpers take a testing.TB and fail the test; `go run ./bench` and `go run ./bench/chaos`
// are commands that must report a failed scenario and go on to the next, so these helpers return
// errors instead. The Mosquitto configuration is testkit's (persistence in the run's directory, "user
// root" when root, so that sessions survive a restart).
package harness
