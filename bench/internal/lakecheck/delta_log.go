package lakecheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// File is one committed data file of a table.
type File struct {
	Path string // absolute path
	Size int64  // bytes, from the add action
	Rows int64  // numRecords from the add action's statistics (-1 when absent)
}

// Tables lists the data files a table's Delta log says are committed (adds not removed), sorted by
// path. A table whose _delta_log does not exist has no files and no error.
func Tables(lakeDir, table string) ([]File, error) {
	logDir := filepath.Join(lakeDir, table, "_delta_log")
	entries, err := os.ReadDir(logDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read delta log of %s: %w", table, err)
	}
	var versions []int64
	for _, e := range entries {
		if v, ok := commitVersion(e.Name()); ok {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	live := map[string]File{}
	for i, v := range versions {
		if int64(i) != v {
			return nil, fmt.Errorf("delta log of %s: version %d missing (next is %d)", table, i, v)
		}
		data, err := os.ReadFile(filepath.Join(logDir, fmt.Sprintf("%020d.json", v)))
		if err != nil {
			return nil, fmt.Errorf("read delta log of %s: %w", table, err)
		}
		if err := applyCommit(data, live); err != nil {
			return nil, fmt.Errorf("delta log of %s, version %d: %w", table, v, err)
		}
	}
	out := make([]File, 0, len(live))
	for rel, f := range live {
		f.Path = filepath.Join(lakeDir, table, filepath.FromSlash(rel))
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int {
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	return out, nil
}

// commitVersion reports whether name is a commit file (20 digits, ".json") and its version.
func commitVersion(name string) (int64, bool) {
	if len(name) != 25 || name[20:] != ".json" {
		return 0, false
	}
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	return v, err == nil
}

// applyCommit applies the add and remove actions of one commit (newline-delimited JSON) to live,
// keyed by the unescaped relative path.
func applyCommit(data []byte, live map[string]File) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var a struct {
			Add *struct {
				Path  string `json:"path"`
				Size  int64  `json:"size"`
				Stats string `json:"stats"`
			} `json:"add"`
			Remove *struct {
				Path string `json:"path"`
			} `json:"remove"`
		}
		if err := json.Unmarshal(line, &a); err != nil {
			return fmt.Errorf("action %.60q: %w", line, err)
		}
		switch {
		case a.Add != nil:
			rel, err := url.PathUnescape(a.Add.Path)
			if err != nil || rel == "" || filepath.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(rel)) {
				return fmt.Errorf("add path %q is not a relative path inside the table", a.Add.Path)
			}
			if a.Add.Size < 0 {
				return fmt.Errorf("add %q: negative size %d", a.Add.Path, a.Add.Size)
			}
			f := File{Size: a.Add.Size, Rows: -1}
			if a.Add.Stats != "" {
				var st struct {
					NumRecords *int64 `json:"numRecords"`
				}
				if err := json.Unmarshal([]byte(a.Add.Stats), &st); err != nil {
					return fmt.Errorf("add %q: stats: %w", a.Add.Path, err)
				}
				if st.NumRecords != nil && *st.NumRecords >= 0 {
					f.Rows = *st.NumRecords
				}
			}
			live[rel] = f
		case a.Remove != nil:
			rel, err := url.PathUnescape(a.Remove.Path)
			if err != nil {
				return fmt.Errorf("remove path %q: %w", a.Remove.Path, err)
			}
			delete(live, rel)
		}
	}
	return sc.Err()
}

// Bytes returns the total size and row count of files (rows of files without statistics count 0).
func Bytes(files []File) (size, rows int64) {
	for _, f := range files {
		size += f.Size
		if f.Rows > 0 {
			rows += f.Rows
		}
	}
	return size, rows
}
