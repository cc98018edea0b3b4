package wal

import (
	"fmt"
	"os"
)

// segmentFile is the write side of a segment file. *os.File-backed in production (osFile); tests wrap it
// to inject write and fsync failures.
type segmentFile interface {
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	// Sync makes written data durable (fdatasync where the OS has it).
	Sync() error
	Close() error
}

// fileOpener opens segment files for writing.
type fileOpener func(path string, flag int) (segmentFile, error)

// osFile is a segmentFile on an *os.File.
type osFile struct{ *os.File }

func (f osFile) Sync() error { return datasync(f.File) }

func openOSFile(path string, flag int) (segmentFile, error) {
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// syncDir makes renames and creations in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
