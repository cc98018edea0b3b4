//go:build !unix

package wal

// lockDir is a no-op where flock is not available.
func lockDir(dir string) (release func() error, err error) {
	return func() error { return nil }, nil
}
