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

// renamedFile is a segment file that was created as <name>.tmp and renamed to path (createSegment).
// *os.File keeps the name it was opened with, so without it a failed write or fdatasync of the segment
// would name the .tmp file, which no longer exists; its methods' *os.PathError name path instead.
type renamedFile struct {
	segmentFile
	tmp, path string
}

func (f renamedFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.segmentFile.WriteAt(p, off)
	return n, f.rename(err)
}

func (f renamedFile) Truncate(size int64) error { return f.rename(f.segmentFile.Truncate(size)) }
func (f renamedFile) Sync() error               { return f.rename(f.segmentFile.Sync()) }
func (f renamedFile) Close() error              { return f.rename(f.segmentFile.Close()) }

// rename returns err, or when the file returned a *os.PathError naming the .tmp file, the same error
// naming the segment's real path.
func (f renamedFile) rename(err error) error {
	if pe, ok := err.(*os.PathError); ok && pe.Path == f.tmp {
		return &os.PathError{Op: pe.Op, Path: f.path, Err: pe.Err}
	}
	return err
}

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
