//go:build !linux

package query

// lowPriority runs fn. Thread priorities are only lowered on Linux.
func lowPriority(nice int, fn func()) { fn() }
