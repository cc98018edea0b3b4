package lake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// FilesSince returns the live data files of table (paths relative to the lake's root) whose add
// action was written at or after since: the files the table gained recently. The decoder reads the
// keys of the readings committed within its deduplication window from them after a restart.
func (l *Lake) FilesSince(ctx context.Context, table string, since time.Time) ([]string, error) {
	t, err := delta.Open(ctx, l.store, table, delta.Options{Logger: l.logger, TrackFiles: true})
	if err != nil {
		if errors.Is(err, delta.ErrNoTable) {
			return nil, nil
		}
		return nil, fmt.Errorf("recent files of %s: %w", table, err)
	}
	cut := since.UnixMilli()
	var out []string
	for _, a := range t.Snapshot().Files() {
		if a.ModificationTime < cut {
			continue
		}
		p, err := delta.UnescapePath(a.Path)
		if err != nil {
			return nil, fmt.Errorf("recent files of %s: %w", table, err)
		}
		out = append(out, table+"/"+p)
	}
	return out, nil
}

// ReadFile reads every row of the Parquet file at path (relative to the lake's root) into rows of
// type T, matching columns by name: T may hold a subset of the file's columns, and only those are
// decoded.
func ReadFile[T any](ctx context.Context, l *Lake, path string) ([]T, error) {
	data, err := l.bucket.ReadAll(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	out := make([]T, 0, f.NumRows())
	buf := make([]T, 4096)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}
