package query

import (
	"runtime"
	"syscall"
)

// lowPriority runs fn on an OS thread of its own whose niceness is raised to nice, and waits for
// it. It is used only to open DuckDB: its worker threads, created then, inherit the niceness, so the
// share of a query they execute uses only the CPU time that ingest leaves. It is not used around
// queries themselves: the calling thread runs Go code between DuckDB's tasks, and a garbage
// collection's stop-the-world waits for every thread running Go code to reach a safe point; a
// lowered thread is scheduled so rarely on a busy machine that the whole process stalled for
// hundreds of milliseconds (BenchmarkFreshness p99 555 ms, 44 ms without; 64 ms with it and the
// collector off). The thread is never unlocked: it exits with the goroutine, so no other goroutine
// ever runs at the lowered priority (and Go creates no new threads from a locked one).
func lowPriority(nice int, fn func()) {
	if nice <= 0 {
		fn()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice) // best effort
		fn()
	}()
	<-done
}
