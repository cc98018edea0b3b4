package query

import (
	"runtime"
	"syscall"
)

// lowPriority runs fn on an OS thread of its own whose niceness is raised to nice, and waits for
// it. DuckDB executes a query on the calling thread plus its worker threads (which inherit the
// niceness of the thread that created them, at Open), so queries then use only the CPU time that
// ingest leaves. The thread is never unlocked: it exits with the goroutine, so no other goroutine
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
