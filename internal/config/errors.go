package config

import (
	"fmt"
	"strings"
)

// FieldError is one invalid setting.
type FieldError struct {
	Key     string // full dotted key, e.g. "mqtt.qos"
	Problem string // what is wrong, e.g. `2 is not supported`
	Fix     string // how to fix it, e.g. "use 0 or 1"
	Origin  string // where the value came from: "sluice.yaml:12", "env SLUICE_MQTT_QOS", or "" (default)
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Key)
	b.WriteString(": ")
	b.WriteString(e.Problem)
	if e.Origin != "" {
		fmt.Fprintf(&b, " (%s)", e.Origin)
	}
	if e.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Errors collects field errors; a nil or empty Errors is no error.
type Errors []*FieldError

// Add records an error for key (relative to the component being validated).
func (es *Errors) Add(key, problem, fix string) {
	*es = append(*es, &FieldError{Key: key, Problem: problem, Fix: fix})
}

// Check records an error for key when ok is false.
func (es *Errors) Check(ok bool, key, problem, fix string) {
	if !ok {
		es.Add(key, problem, fix)
	}
}

// Nest adds the errors of a nested component, prefixing their keys with prefix.
func (es *Errors) Nest(prefix string, nested Errors) {
	for _, e := range nested {
		c := *e
		c.Key = join(prefix, c.Key)
		*es = append(*es, &c)
	}
}

// Err returns es as an error, or nil when empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func (es Errors) Error() string {
	if len(es) == 1 {
		return "invalid configuration: " + es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(es))
	for _, e := range es {
		b.WriteString("\n  - ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Validator is implemented by component configs. Keys in the returned errors are relative to the
// component (Load prefixes them with the component's path).
type Validator interface {
	Validate() Errors
}

func join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return prefix + "." + key
}
