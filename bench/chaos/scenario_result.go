package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// Check is one scenario-specific requirement and whether it held.
type Check struct {
	What   string
	OK     bool
	Detail string
}

// Result is what one scenario did and found.
type Result struct {
	Scenario    string
	Events      string // what was done to sluice, e.g. "20 SIGKILLs"
	Sent        int64  // handed to MQTT by the publishers
	Acked       int64  // acknowledged (PUBACK)
	InLake      int64  // acknowledged messages found in readings/ with their value (or, hostile: in quarantine/)
	Unacked     int64  // in readings/ although never acknowledged (the PUBACK was lost): allowed
	Duplicates  int64  // rows of readings/ beyond one per (sensor_id, metric, ts)
	Lost        int64  // acknowledged but not in the lake
	WrongValues int64  // found with another value
	Checks      []Check
	Err         error // the scenario could not be run to its end
	Elapsed     time.Duration
}

// Check records a requirement.
func (r *Result) Check(ok bool, what, format string, args ...any) {
	r.Checks = append(r.Checks, Check{What: what, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// Pass reports whether the scenario ran to its end with nothing lost, nothing duplicated, every value
// right and every check held.
func (r *Result) Pass() bool {
	if r.Err != nil || r.Lost != 0 || r.Duplicates != 0 || r.WrongValues != 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func (r *Result) verdict() string {
	if r.Pass() {
		return "pass"
	}
	return "FAIL"
}

// table renders results as a Markdown table followed by each scenario's checks.
func table(results []*Result) string {
	var b bytes.Buffer
	b.WriteString("| scenario | what was done | sent | acknowledged | in lake | in lake, unacknowledged | duplicates | lost | wrong values | time | verdict |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", r.Scenario, r.Events, r.Sent, r.Acked,
			r.InLake, r.Unacked, r.Duplicates, r.Lost, r.WrongValues, r.Elapsed.Round(time.Second), r.verdict())
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n**%s**", r.Scenario)
		if r.Err != nil {
			fmt.Fprintf(&b, " — did not complete: %s", oneLine(r.Err.Error()))
		}
		b.WriteString("\n\n")
		for _, c := range r.Checks {
			mark := "ok"
			if !c.OK {
				mark = "FAILED"
			}
			fmt.Fprintf(&b, "- %s: %s — %s\n", mark, c.What, c.Detail)
		}
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ⏎ ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}
