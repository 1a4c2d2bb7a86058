package api

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// spec is docs/openapi.yaml, read once, with a small validator for the
// parts of JSON Schema it uses: type, nullable, enum, properties,
// required, additionalProperties, items and $ref.
type spec struct {
	doc map[string]any
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return &spec{doc: doc}
}

func (s *spec) ref(r string) map[string]any {
	var cur any = s.doc
	for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
		cur = cur.(map[string]any)[part]
	}
	return cur.(map[string]any)
}

func (s *spec) resolve(m map[string]any) map[string]any {
	for {
		r, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		m = s.ref(r)
	}
}

// operations lists "METHOD path status" of every documented response.
func (s *spec) operations() []string {
	var out []string
	for path, ops := range s.doc["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			for status := range op.(map[string]any)["responses"].(map[string]any) {
				out = append(out, fmt.Sprintf("%s %s %s", strings.ToUpper(method), path, status))
			}
		}
	}
	sort.Strings(out)
	return out
}

// responseSchema is the JSON schema of a documented response, nil when the
// operation or status is not documented.
func (s *spec) responseSchema(method, path, status string) (map[string]any, bool) {
	ops, ok := s.doc["paths"].(map[string]any)[path].(map[string]any)
	if !ok {
		return nil, false
	}
	op, ok := ops[strings.ToLower(method)].(map[string]any)
	if !ok {
		return nil, false
	}
	resp, ok := op["responses"].(map[string]any)[status].(map[string]any)
	if !ok {
		return nil, false
	}
	resp = s.resolve(resp)
	content, _ := resp["content"].(map[string]any)
	js, _ := content["application/json"].(map[string]any)
	if js == nil {
		return nil, true
	}
	return js["schema"].(map[string]any), true
}

var dateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)

// validate checks v (decoded JSON) against schema; errors name the JSON
// path.
func (s *spec) validate(path string, schema map[string]any, v any) []string {
	schema = s.resolve(schema)
	if v == nil {
		if n, _ := schema["nullable"].(bool); n {
			return nil
		}
		if _, typed := schema["type"]; !typed {
			return nil
		}
		return []string{path + ": null where the schema does not allow it"}
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	switch schema["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %T", v)
			return errs
		}
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asList(schema["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				bad("missing required %q", r)
			}
		}
		for k, val := range obj {
			if p, ok := props[k]; ok {
				errs = append(errs, s.validate(path+"."+k, p.(map[string]any), val)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("member %q is not in the schema", k)
				}
			case map[string]any:
				errs = append(errs, s.validate(path+"."+k, ap, val)...)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			bad("want an array, got %T", v)
			return errs
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, s.validate(fmt.Sprintf("%s[%d]", path, i), items, x)...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("want a string, got %T", v)
			return errs
		}
		if schema["format"] == "date-time" && !dateTime.MatchString(str) {
			bad("%q is not a date-time", str)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			bad("want an integer, got %v", v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			bad("want a number, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, got %T", v)
		}
	}
	if enum := asList(schema["enum"]); enum != nil {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			bad("%v is not one of %v", v, enum)
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestValidatorRefuses makes sure the validator can fail: a response that
// breaks the schema in each way it checks is reported.
func TestValidatorRefuses(t *testing.T) {
	s := loadSpec(t)
	schema, _ := s.responseSchema("GET", "/v1/status", "200")
	cases := map[string]any{
		"not an object":   []any{},
		"missing members": map[string]any{"version": "x"},
	}
	for name, v := range cases {
		if errs := s.validate("$", schema, v); len(errs) == 0 {
			t.Errorf("%s: validator accepted %v", name, v)
		}
	}
	pause, _ := s.responseSchema("POST", "/v1/pause", "200")
	for _, v := range []any{map[string]any{"paused": "yes"}, map[string]any{"paused": true, "extra": 1}, map[string]any{}} {
		if errs := s.validate("$", pause, v); len(errs) == 0 {
			t.Errorf("validator accepted %v for the pause answer", v)
		}
	}
	mode := map[string]any{"$ref": "#/components/schemas/Undone"}
	if errs := s.validate("$", mode, map[string]any{"mode": "fast", "undone": []any{}}); len(errs) == 0 {
		t.Error("validator accepted mode fast")
	}
	if errs := s.validate("$", pause, map[string]any{"paused": true}); len(errs) != 0 {
		t.Errorf("validator refused a good answer: %v", errs)
	}
}
