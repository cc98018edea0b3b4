package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that overrides a setting.
const EnvPrefix = "SLUICE_"

// Override sets one key from outside the file and the environment: a command-line flag.
type Override struct {
	Key    string // dotted key, e.g. "mqtt.broker"
	Value  string // parsed like an environment variable's value
	Origin string // shown in errors, e.g. "flag --broker"
}

// Load fills dst (a pointer to a struct already holding its defaults) from the YAML file at path (none
// when path is ""), then from environment variables in environ (os.Environ() form), then from
// overrides (flags), then validates every component. All problems are returned together as Errors.
func Load(path string, dst any, environ []string, overrides ...Override) error {
	origins := map[string]string{}
	var errs Errors
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		errs = append(errs, decodeYAML(path, data, dst, origins)...)
		if len(errs) > 0 {
			return errs
		}
	}
	errs = append(errs, applyEnv(dst, environ, origins)...)
	errs = append(errs, applyOverrides(dst, overrides, origins)...)
	if len(errs) > 0 {
		return errs
	}
	return Validate(dst, origins)
}

func applyOverrides(dst any, overrides []Override, origins map[string]string) Errors {
	var errs Errors
	for _, o := range overrides {
		found := false
		walk(reflect.ValueOf(dst), "", func(key string, f reflect.Value) bool {
			if key != o.Key {
				return strings.HasPrefix(o.Key, key+".")
			}
			found = true
			origins[key] = o.Origin
			if err := setFromString(f, o.Value); err != nil {
				errs = append(errs, &FieldError{Key: key, Problem: err.Error(), Fix: "give " + o.Origin + " a value of the type `sluice config` shows", Origin: o.Origin})
			}
			return false
		})
		if !found {
			errs = append(errs, &FieldError{Key: o.Key, Problem: "no such setting", Origin: o.Origin})
		}
	}
	return errs
}

// Validate runs Validate on every component in v and returns the collected errors (nil when none),
// with each error's origin taken from origins (key -> "file:line" or "env VAR") when known.
func Validate(v any, origins map[string]string) error {
	var errs Errors
	if val, ok := v.(Validator); ok { // rules across components
		errs = append(errs, val.Validate()...)
	}
	walk(reflect.ValueOf(v), "", func(key string, f reflect.Value) bool {
		if f.CanAddr() {
			if val, ok := f.Addr().Interface().(Validator); ok {
				errs.Nest(key, val.Validate())
			}
		}
		return true
	})
	for _, e := range errs {
		if e.Origin == "" {
			e.Origin = originOf(e.Key, origins)
		}
	}
	return errs.Err()
}

// originOf returns where key was set, or else where its nearest parent was (a list element's fields
// have no origin of their own: "decode.mappings[1].topic" reports the line of "decode.mappings").
func originOf(key string, origins map[string]string) string {
	for key != "" {
		if o, ok := origins[key]; ok {
			return o
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return ""
		}
		key = key[:i]
	}
	return ""
}

func decodeYAML(path string, data []byte, dst any, origins map[string]string) Errors {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Errors{{Key: "", Problem: strings.TrimPrefix(err.Error(), "yaml: "), Fix: "correct the YAML syntax", Origin: path}}
	}
	if len(root.Content) == 0 {
		return nil // empty file
	}
	var errs Errors
	checkKeys(path, root.Content[0], reflect.TypeOf(dst).Elem(), "", origins, &errs)
	if len(errs) > 0 {
		return errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(dst); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				errs = append(errs, &FieldError{Problem: m, Fix: "give the value the type `sluice config` shows", Origin: path})
			}
			return errs
		}
		return Errors{{Problem: err.Error(), Fix: "give the value the type `sluice config` shows", Origin: path}}
	}
	return nil
}

// checkKeys reports keys in n that t does not declare, and records where each key came from.
func checkKeys(path string, n *yaml.Node, t reflect.Type, prefix string, origins map[string]string, errs *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode || isLeafType(t) {
		return
	}
	fields := map[string]reflect.StructField{}
	for _, f := range visibleFields(t) {
		fields[yamlName(f)] = f
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := join(prefix, k.Value)
		origins[key] = fmt.Sprintf("%s:%d", path, k.Line)
		f, ok := fields[k.Value]
		if !ok {
			*errs = append(*errs, &FieldError{Key: key, Problem: "unknown key", Fix: suggest(k.Value, fields), Origin: origins[key]})
			continue
		}
		checkKeys(path, v, f.Type, key, origins, errs)
	}
}

func suggest(k string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 1<<30
	for name := range fields {
		names = append(names, name)
		if d := distance(k, name); d < bestD {
			best, bestD = name, d
		}
	}
	slices.Sort(names)
	if bestD <= 2 {
		return fmt.Sprintf("did you mean %q? (`sluice config` lists every key)", best)
	}
	return fmt.Sprintf("remove it; keys here are %s", strings.Join(names, ", "))
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// EnvName returns the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func applyEnv(dst any, environ []string, origins map[string]string) Errors {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	var errs Errors
	walk(reflect.ValueOf(dst), "", func(key string, f reflect.Value) bool {
		if !isLeaf(f) {
			return true
		}
		name := EnvName(key)
		s, ok := env[name]
		if !ok {
			return false
		}
		origins[key] = "env " + name
		if err := setFromString(f, s); err != nil {
			errs = append(errs, &FieldError{Key: key, Problem: err.Error(), Fix: "set " + name + " to a value of the type `sluice config` shows", Origin: origins[key]})
		}
		return false
	})
	return errs
}

// EnvUnknown returns the SLUICE_ variables in environ that name no setting of v.
func EnvUnknown(v any, environ []string) []string {
	known := map[string]bool{}
	walk(reflect.ValueOf(v), "", func(key string, f reflect.Value) bool {
		known[EnvName(key)] = true
		return !isLeaf(f)
	})
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix) && !known[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textType        = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func setFromString(f reflect.Value, s string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (write 500ms, 10s, 5m)", s)
		}
		f.SetInt(int64(d))
		return nil
	}
	if f.Addr().Type().Implements(unmarshalerType) {
		return f.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Value: s})
	}
	if f.Addr().Type().Implements(textType) {
		return f.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative whole number", s)
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		f.SetFloat(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return errors.New("this setting is a list of objects: set it in the YAML file")
		}
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment: set it in the YAML file")
	}
	return nil
}

// walk calls fn for every yaml-visible field under v (depth first, parents before children); fn returns
// whether to descend into the field.
func walk(v reflect.Value, prefix string, fn func(key string, f reflect.Value) bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	for _, sf := range visibleFields(v.Type()) {
		f := v.FieldByIndex(sf.Index)
		key := join(prefix, yamlName(sf))
		if fn(key, f) && !isLeaf(f) {
			walk(f, key, fn)
		}
	}
}

func visibleFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Tag.Get("yaml") == "-" {
			continue
		}
		out = append(out, sf)
	}
	return out
}

func yamlName(sf reflect.StructField) string {
	name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(sf.Name)
	}
	return name
}

func isLeaf(f reflect.Value) bool { return isLeafType(f.Type()) }

func isLeafType(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return true
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(unmarshalerType) || pt.Implements(textType)
}
