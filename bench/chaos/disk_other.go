//go:build !linux

package main

import "errors"

// fullDisk makes sluice's writes fail as on a full disk (Linux only: tmpfs or RLIMIT_FSIZE).
type fullDisk interface {
	mode() string
	fill() error
	keep() int64
	free() error
	close() error
	errorText() string
	dataDir(scenario string) string
}

func newFullDisk(string, int64, func() int) (fullDisk, string, error) {
	return nil, "", errors.New("the disk-full scenario needs Linux (a tmpfs mount or prlimit)")
}
