package wal

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// TestRenamedFileErrors: errors of a segment created as .tmp name the segment's real path.
func TestRenamedFileErrors(t *testing.T) {
	f := renamedFile{tmp: "/d/0.wal.tmp", path: "/d/0.wal"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"path error of the tmp name", &os.PathError{Op: "write", Path: "/d/0.wal.tmp", Err: syscall.ENOSPC}, "write /d/0.wal: no space left on device"},
		{"path error of truncate", &os.PathError{Op: "truncate", Path: "/d/0.wal.tmp", Err: syscall.EIO}, "truncate /d/0.wal: input/output error"},
		{"another path", &os.PathError{Op: "write", Path: "/d/other", Err: syscall.EIO}, "write /d/other: input/output error"},
		{"no path", syscall.EIO, "input/output error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.rename(tc.err)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("rename(nil) = %v", err)
				}
				return
			}
			if err.Error() != tc.want || !errors.Is(err, cause(tc.err)) {
				t.Fatalf("rename = %q, want %q (same cause)", err, tc.want)
			}
		})
	}
}

func cause(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
