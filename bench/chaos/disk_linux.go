//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// fullDisk makes sluice's writes fail as on a full disk, and lets them succeed again.
type fullDisk interface {
	mode() string      // how, for the report
	fill() error       // take every free byte (writes now fail)
	keep() int64       // take again whatever sluice freed meanwhile; returns the bytes taken
	free() error       // space returns
	close() error      // undo everything
	errorText() string // the error sluice's log lines carry
	dataDir(scenario string) string
}

// tmpfsDisk is a small tmpfs mounted for the scenario, filled by a ballast file.
type tmpfsDisk struct {
	dir     string // mount point
	ballast *os.File
	chunk   []byte
}

// mountTmpfs mounts a tmpfs of size bytes at dir (created). It fails where mounting is not allowed
// (not root, or a sandbox without CAP_SYS_ADMIN).
func mountTmpfs(dir string, size int64) (*tmpfsDisk, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		return nil, fmt.Errorf("mount a %d-byte tmpfs at %s: %w", size, dir, err)
	}
	return &tmpfsDisk{dir: dir, chunk: make([]byte, 64<<10)}, nil
}

func (d *tmpfsDisk) mode() string {
	return "a 16 MiB tmpfs under the data directory (log and lake), filled by a ballast file"
}

func (d *tmpfsDisk) dataDir(string) string { return filepath.Join(d.dir, "data") }

func (d *tmpfsDisk) errorText() string { return "no space left on device" }

func (d *tmpfsDisk) fill() error {
	f, err := os.OpenFile(filepath.Join(d.dir, "ballast"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("ballast: %w", err)
	}
	d.ballast = f
	_ = d.keep()
	return nil
}

// keep appends to the ballast until the file system is full, smaller chunks last, so that not even a
// few bytes are left.
func (d *tmpfsDisk) keep() int64 {
	if d.ballast == nil {
		return 0
	}
	var took int64
	for n := len(d.chunk); n >= 1; n /= 4 {
		for {
			w, err := d.ballast.Write(d.chunk[:n])
			took += int64(w)
			if err != nil {
				break
			}
		}
	}
	return took
}

func (d *tmpfsDisk) free() error {
	if d.ballast == nil {
		return nil
	}
	d.ballast.Close()
	d.ballast = nil
	return os.Remove(filepath.Join(d.dir, "ballast"))
}

func (d *tmpfsDisk) close() error {
	d.free()
	if err := unix.Unmount(d.dir, 0); err != nil {
		return unix.Unmount(d.dir, unix.MNT_DETACH)
	}
	return nil
}

// rlimitDisk is the substitute where mounting is not allowed: RLIMIT_FSIZE = 0 on the sluice process
// makes every write that would grow a file fail with EFBIG (Go ignores SIGXFSZ), as writes fail on
// a full disk; restoring the limit is space returning.
type rlimitDisk struct {
	pid func() int
	old unix.Rlimit
	set bool
	dir string
}

func (d *rlimitDisk) mode() string {
	return "RLIMIT_FSIZE = 0 on the sluice process (the substitute where a tmpfs cannot be mounted): every write that grows a file fails with EFBIG"
}

func (d *rlimitDisk) dataDir(string) string { return filepath.Join(d.dir, "data") }

func (d *rlimitDisk) errorText() string { return syscall.EFBIG.Error() }

func (d *rlimitDisk) fill() error {
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_FSIZE, nil, &d.old); err != nil {
		return fmt.Errorf("prlimit: %w", err)
	}
	lim := unix.Rlimit{Cur: 0, Max: d.old.Max}
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		return fmt.Errorf("prlimit: %w", err)
	}
	d.set = true
	return nil
}

func (d *rlimitDisk) keep() int64 { return 0 }

func (d *rlimitDisk) free() error {
	if !d.set {
		return nil
	}
	d.set = false
	if err := unix.Prlimit(d.pid(), unix.RLIMIT_FSIZE, &d.old, nil); err != nil {
		return fmt.Errorf("prlimit: %w", err)
	}
	return nil
}

func (d *rlimitDisk) close() error { return d.free() }

// newFullDisk returns a tmpfs of size bytes at dir, or, where mounting fails, the RLIMIT_FSIZE
// substitute on the process pid returns (with the data directory on the ordinary disk) and why.
//
// SLUICE_CHAOS_DISK=rlimit forces the substitute (to test it where mounting works).
func newFullDisk(dir string, size int64, pid func() int) (fullDisk, string, error) {
	if os.Getenv("SLUICE_CHAOS_DISK") == "rlimit" {
		return &rlimitDisk{pid: pid, dir: dir}, "SLUICE_CHAOS_DISK=rlimit", nil
	}
	d, err := mountTmpfs(filepath.Join(dir, "mnt"), size)
	if err == nil {
		return d, "", nil
	}
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.ENODEV) {
		return nil, "", err
	}
	return &rlimitDisk{pid: pid, dir: dir}, err.Error(), nil
}
