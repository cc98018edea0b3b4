package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Document writes v (a struct holding defaults, or a loaded configuration) as commented YAML: every
// key with its doc text, the environment variable that overrides it, and its value. Fields tagged
// secret:"true" print as "" whatever they hold.
func Document(w io.Writer, v any) error {
	var b strings.Builder
	document(&b, reflect.ValueOf(v), "", 0)
	_, err := io.WriteString(w, b.String())
	return err
}

func document(b *strings.Builder, v reflect.Value, prefix string, depth int) {
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	indent := strings.Repeat("  ", depth)
	for i, sf := range visibleFields(v.Type()) {
		f := v.FieldByIndex(sf.Index)
		name := yamlName(sf)
		key := join(prefix, name)
		if depth == 0 && i > 0 {
			b.WriteString("\n")
		}
		for line := range strings.SplitSeq(strings.TrimSpace(sf.Tag.Get("doc")), "\n") {
			if line != "" {
				fmt.Fprintf(b, "%s# %s\n", indent, strings.TrimSpace(line))
			}
		}
		if !isLeaf(f) {
			fmt.Fprintf(b, "%s%s:\n", indent, name)
			document(b, f, key, depth+1)
			continue
		}
		if canEnv(f) {
			fmt.Fprintf(b, "%s# env: %s\n", indent, EnvName(key))
		}
		if sf.Tag.Get("secret") == "true" {
			fmt.Fprintf(b, "%s%s: \"\"\n", indent, name)
			continue
		}
		fmt.Fprintf(b, "%s%s:%s\n", indent, name, scalar(f, indent))
	}
}

func canEnv(f reflect.Value) bool {
	if f.Kind() == reflect.Slice {
		return f.Type().Elem().Kind() == reflect.String
	}
	return f.Kind() != reflect.Map
}

// scalar renders a leaf value after "key:".
func scalar(f reflect.Value, indent string) string {
	if f.Type() == durationType {
		return " " + time.Duration(f.Int()).String()
	}
	switch f.Kind() {
	case reflect.Slice, reflect.Map:
		if f.Len() == 0 {
			if f.Kind() == reflect.Map {
				return " {}"
			}
			return " []"
		}
		if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String {
			out, _ := yaml.Marshal(f.Interface())
			var items []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				items = append(items, strings.TrimPrefix(l, "- "))
			}
			return " [" + strings.Join(items, ", ") + "]"
		}
	}
	out, err := yaml.Marshal(f.Interface())
	if err != nil {
		return fmt.Sprintf(" %v", f.Interface())
	}
	s := strings.TrimRight(string(out), "\n")
	if strings.Contains(s, "\n") {
		return "\n" + indent + "  " + strings.ReplaceAll(s, "\n", "\n"+indent+"  ")
	}
	return " " + s
}
