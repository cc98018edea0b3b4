package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-project/sluice/bench/internal/lakecheck"
	"github.com/sluice-project/sluice/internal/lake"
	"github.com/sluice-project/sluice/internal/log/memlog"
)

// storageCase is one fleet size: minutes of 1 Hz readings.
type storageCase struct {
	fleet   int
	minutes int
}

// storagePlan sizes the storage measurement.
type storagePlan struct {
	cases []storageCase
	runs  int // seeds per case
}

// storageResult is the committed files of one run.
type storageResult struct {
	messages                int64
	rawBytes, readingsBytes int64
	minutesBytes            int64 // readings_1m/
	rawFiles, readingsFiles int
	logBytes                int64 // the three tables' _delta_log directories
}

// measureStorage measures bytes per reading in raw/, readings/ and readings_1m/.
func measureStorage(ctx context.Context, e *env, plan storagePlan) (*Section, []string) {
	s := &Section{Title: "Storage cost: bytes per reading"}
	s.Intro = "Readings of the default (nested) payload shape from the simulator (its random walk plus noise, two decimals, " +
		"µs timestamps), every sensor once a second, through the archiver and decoder with the default lake settings except that " +
		"files are cut every simulated minute (flush_rows = sensors × 60, as the default flush_interval of one minute cuts them at that rate). " +
		"Bytes are the committed Parquet files' sizes from the Delta log, divided by the readings; each seed is one run. " +
		"readings_1m/ (the 1-minute aggregates) has no target: it is what the resample costs on top."
	var errs []string
	for _, sc := range plan.cases {
		name := fmt.Sprintf("%s sensors × %d min", formatNum(float64(sc.fleet), 0), sc.minutes)
		raw := s.Add("raw/ bytes per reading, "+name, "bytes", 2).Goal(16, false)
		rd := s.Add("readings/ bytes per reading, "+name, "bytes", 2).Goal(6, false)
		m1 := s.Add("readings_1m/ bytes per reading, "+name, "bytes", 3)
		var last storageResult
		for r := range plan.runs {
			res, err := storageRun(ctx, e, sc, int64(r+1))
			if err != nil {
				errs = append(errs, fmt.Sprintf("storage %s seed %d: %v", name, r+1, err))
				continue
			}
			n := float64(res.messages)
			raw.Values = append(raw.Values, float64(res.rawBytes)/n)
			rd.Values = append(rd.Values, float64(res.readingsBytes)/n)
			m1.Values = append(m1.Values, float64(res.minutesBytes)/n)
			e.say("storage %s seed %d: raw %.2f B/reading (%d files), readings %.2f B/reading (%d files)", name, r+1,
				float64(res.rawBytes)/n, res.rawFiles, float64(res.readingsBytes)/n, res.readingsFiles)
			last = res
		}
		if last.messages > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("%s: %s readings, %d raw/ and %d readings/ files; the Delta logs add %.3f bytes per reading.",
				name, formatNum(float64(last.messages), 0), last.rawFiles, last.readingsFiles, float64(last.logBytes)/float64(last.messages)))
		}
	}
	s.Notes = append(s.Notes, "A payload of the nested shape is about 150 bytes of JSON; raw/ keeps it byte for byte (zstd over the delta-length-encoded payload column).")
	return s, errs
}

// storageRun writes sc.minutes of 1 Hz readings of sc.fleet sensors through both stages.
func storageRun(ctx context.Context, e *env, sc storageCase, seed int64) (storageResult, error) {
	dir, err := e.dir("storage")
	if err != nil {
		return storageResult{}, err
	}
	defer os.RemoveAll(dir)
	n := sc.fleet * sc.minutes * 60
	start := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	c, err := makeCorpus(n, sc.fleet, seed, start)
	if err != nil {
		return storageResult{}, err
	}
	l := memlog.New()
	lakeDir := filepath.Join(dir, "lake")
	lk, err := lake.Open(ctx, "file://"+filepath.ToSlash(lakeDir))
	if err != nil {
		return storageResult{}, err
	}
	defer lk.Close()
	lcfg := lake.DefaultConfig()
	lcfg.FlushRows = sc.fleet * 60
	lcfg.FlushInterval = 24 * time.Hour // only the row count cuts files
	st, err := startStages(ctx, l, lk, lcfg, c.reg, nil)
	if err != nil {
		return storageResult{}, err
	}
	appendErr := appendAll(ctx, l, c, 1024, 4)
	if err := st.drain(); err != nil || appendErr != nil {
		return storageResult{}, fmt.Errorf("append: %v; stages: %v", appendErr, err)
	}
	res := storageResult{messages: int64(n)}
	rawFiles, err := lakecheck.Tables(lakeDir, "raw")
	if err != nil {
		return res, err
	}
	rdFiles, err := lakecheck.Tables(lakeDir, "readings")
	if err != nil {
		return res, err
	}
	var rawRows, rdRows int64
	res.rawBytes, rawRows = lakecheck.Bytes(rawFiles)
	res.readingsBytes, rdRows = lakecheck.Bytes(rdFiles)
	res.rawFiles, res.readingsFiles = len(rawFiles), len(rdFiles)
	m1Files, err := lakecheck.Tables(lakeDir, "readings_1m")
	if err != nil {
		return res, err
	}
	res.minutesBytes, _ = lakecheck.Bytes(m1Files)
	if rawRows != int64(n) || rdRows != int64(n) {
		return res, fmt.Errorf("the Delta logs count %d raw and %d readings rows, want %d of each", rawRows, rdRows, n)
	}
	for _, t := range []string{"raw", "readings", "readings_1m"} {
		size, err := dirSize(filepath.Join(lakeDir, t, "_delta_log"))
		if err != nil {
			return res, err
		}
		res.logBytes += size
	}
	return res, nil
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}
