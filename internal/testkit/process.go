package testkit

import (
	"os"
	"time"
)

// StopProcess sends sig to p and waits up to timeout for exited (closed once p has been waited for)
// to close; past it p is killed and waited for. It reports whether p exited within the timeout.
func StopProcess(p *os.Process, exited <-chan struct{}, sig os.Signal, timeout time.Duration) bool {
	_ = p.Signal(sig)
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
		_ = p.Kill()
		<-exited
		return false
	}
}
