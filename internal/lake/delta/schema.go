package delta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Primitive type names (PROTOCOL.md "Schema Serialization Format", "Primitive Types").
const (
	TypeString    = "string"
	TypeLong      = "long"
	TypeInteger   = "integer"
	TypeShort     = "short"
	TypeByte      = "byte"
	TypeFloat     = "float"
	TypeDouble    = "double"
	TypeBoolean   = "boolean"
	TypeBinary    = "binary"
	TypeDate      = "date"
	TypeTimestamp = "timestamp"
)

// maxSchemaDepth bounds nesting when parsing a schema from the log (untrusted input).
const maxSchemaDepth = 64

// StructType is a struct schema: the table's top-level schema or a struct column ("Struct Type").
type StructType struct {
	Fields []StructField
}

// StructField is one column ("Struct Field").
type StructField struct {
	Name     string
	Type     DataType
	Nullable bool
	Metadata map[string]any
}

// DataType is a primitive type name, or exactly one of the nested types.
type DataType struct {
	Primitive string
	Struct    *StructType
	Array     *ArrayType
	Map       *MapType
}

// ArrayType is an array column ("Array Type").
type ArrayType struct {
	ElementType  DataType
	ContainsNull bool
}

// MapType is a map column ("Map Type").
type MapType struct {
	KeyType           DataType
	ValueType         DataType
	ValueContainsNull bool
}

// Primitive returns a primitive DataType.
func Primitive(name string) DataType { return DataType{Primitive: name} }

// Field returns the field named name, or nil.
func (s *StructType) Field(name string) *StructField {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// String renders t as Delta writes it in schemaString.
func (t DataType) String() string {
	if t.Primitive != "" {
		return t.Primitive
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "<invalid>"
	}
	return string(b)
}

// MarshalJSON implements json.Marshaler.
func (s StructType) MarshalJSON() ([]byte, error) {
	fields := s.Fields
	if fields == nil {
		fields = []StructField{}
	}
	return json.Marshal(struct {
		Type   string        `json:"type"`
		Fields []StructField `json:"fields"`
	}{"struct", fields})
}

// MarshalJSON implements json.Marshaler.
func (f StructField) MarshalJSON() ([]byte, error) {
	md := f.Metadata
	if md == nil {
		md = map[string]any{}
	}
	return json.Marshal(struct {
		Name     string         `json:"name"`
		Type     DataType       `json:"type"`
		Nullable bool           `json:"nullable"`
		Metadata map[string]any `json:"metadata"`
	}{f.Name, f.Type, f.Nullable, md})
}

// MarshalJSON implements json.Marshaler.
func (t DataType) MarshalJSON() ([]byte, error) {
	switch {
	case t.Primitive != "":
		return json.Marshal(t.Primitive)
	case t.Struct != nil:
		return json.Marshal(*t.Struct)
	case t.Array != nil:
		return json.Marshal(struct {
			Type         string   `json:"type"`
			ElementType  DataType `json:"elementType"`
			ContainsNull bool     `json:"containsNull"`
		}{"array", t.Array.ElementType, t.Array.ContainsNull})
	case t.Map != nil:
		return json.Marshal(struct {
			Type              string   `json:"type"`
			KeyType           DataType `json:"keyType"`
			ValueType         DataType `json:"valueType"`
			ValueContainsNull bool     `json:"valueContainsNull"`
		}{"map", t.Map.KeyType, t.Map.ValueType, t.Map.ValueContainsNull})
	}
	return nil, errors.New("delta: empty data type")
}

// ParseSchema parses a schemaString: a JSON struct type.
func ParseSchema(data []byte) (*StructType, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if dec.More() {
		return nil, errors.New("schema: trailing data after the struct")
	}
	t, err := parseType(raw, 0)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if t.Struct == nil {
		return nil, fmt.Errorf("schema: top level is %s, want a struct", t)
	}
	return t.Struct, nil
}

func parseType(v any, depth int) (DataType, error) {
	if depth > maxSchemaDepth {
		return DataType{}, fmt.Errorf("nested deeper than %d", maxSchemaDepth)
	}
	switch x := v.(type) {
	case string:
		if x == "" || strings.ContainsAny(x, "{}[]\"") {
			return DataType{}, fmt.Errorf("bad primitive type name %q", x)
		}
		return Primitive(x), nil
	case map[string]any:
		kind, _ := x["type"].(string)
		switch kind {
		case "struct":
			list, ok := x["fields"].([]any)
			if !ok {
				return DataType{}, errors.New("struct without a fields array")
			}
			st := &StructType{Fields: make([]StructField, 0, len(list))}
			seen := make(map[string]bool, len(list))
			for i, fv := range list {
				fm, ok := fv.(map[string]any)
				if !ok {
					return DataType{}, fmt.Errorf("field %d is not an object", i)
				}
				name, ok := fm["name"].(string)
				if !ok || name == "" {
					return DataType{}, fmt.Errorf("field %d has no name", i)
				}
				if lower := strings.ToLower(name); seen[lower] {
					return DataType{}, fmt.Errorf("field %q repeats (names are case-insensitive)", name)
				} else {
					seen[lower] = true
				}
				ft, err := parseType(fm["type"], depth+1)
				if err != nil {
					return DataType{}, fmt.Errorf("field %q: %w", name, err)
				}
				nullable, _ := fm["nullable"].(bool)
				md, _ := fm["metadata"].(map[string]any)
				st.Fields = append(st.Fields, StructField{Name: name, Type: ft, Nullable: nullable, Metadata: md})
			}
			return DataType{Struct: st}, nil
		case "array":
			et, err := parseType(x["elementType"], depth+1)
			if err != nil {
				return DataType{}, fmt.Errorf("array element: %w", err)
			}
			cn, _ := x["containsNull"].(bool)
			return DataType{Array: &ArrayType{ElementType: et, ContainsNull: cn}}, nil
		case "map":
			kt, err := parseType(x["keyType"], depth+1)
			if err != nil {
				return DataType{}, fmt.Errorf("map key: %w", err)
			}
			vt, err := parseType(x["valueType"], depth+1)
			if err != nil {
				return DataType{}, fmt.Errorf("map value: %w", err)
			}
			vn, _ := x["valueContainsNull"].(bool)
			return DataType{Map: &MapType{KeyType: kt, ValueType: vt, ValueContainsNull: vn}}, nil
		}
		return DataType{}, fmt.Errorf("unknown nested type %q", kind)
	case nil:
		return DataType{}, errors.New("missing type")
	}
	return DataType{}, fmt.Errorf("type is a %T, want a name or an object", v)
}

// Equal reports whether a and b describe the same columns (names, types, nullability; metadata ignored).
func (s *StructType) Equal(o *StructType) bool {
	if len(s.Fields) != len(o.Fields) {
		return false
	}
	for i := range s.Fields {
		a, b := &s.Fields[i], &o.Fields[i]
		if a.Name != b.Name || a.Nullable != b.Nullable || !a.Type.equal(b.Type) {
			return false
		}
	}
	return true
}

func (t DataType) equal(o DataType) bool {
	switch {
	case t.Primitive != "" || o.Primitive != "":
		return t.Primitive == o.Primitive
	case t.Struct != nil && o.Struct != nil:
		return t.Struct.Equal(o.Struct)
	case t.Array != nil && o.Array != nil:
		return t.Array.ContainsNull == o.Array.ContainsNull && t.Array.ElementType.equal(o.Array.ElementType)
	case t.Map != nil && o.Map != nil:
		return t.Map.ValueContainsNull == o.Map.ValueContainsNull && t.Map.KeyType.equal(o.Map.KeyType) && t.Map.ValueType.equal(o.Map.ValueType)
	}
	return false
}
