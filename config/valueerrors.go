package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A value of the wrong kind is the second most common mistake after a
// misspelt key. yaml.v3 says "line 9: cannot unmarshal !!str `three` into
// int"; the message is rewritten to name the field and what it takes:
// "probe.attempts (line 9): must be a whole number, got "three"".

// lineRE splits a decoding message into its line and the rest.
var lineRE = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)

// wrongKindRE matches yaml.v3's message for a value of the wrong kind:
// the YAML tag, the value (scalars only) and the Go type.
var wrongKindRE = regexp.MustCompile("(?s)^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")

// explainValues rewrites the messages in a decoding error that name only
// a line, so that they name the field at that line too, in data; others
// (unknown keys, already rewritten by explainUnknown) pass as they are.
func explainValues(data []byte, te *yaml.TypeError) *yaml.TypeError {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return te
	}
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		msgs[i] = e
		m := lineRE.FindStringSubmatch(e)
		if m == nil || unknownRE.MatchString(e) || strings.Contains(m[2], " has no field ") {
			continue
		}
		line, _ := strconv.Atoi(m[1])
		what := m[2]
		kind, value, goType := yaml.ScalarNode, "", ""
		if k := wrongKindRE.FindStringSubmatch(what); k != nil {
			what, value, goType = wrongKind(k[1], k[2], k[3]), k[2], k[3]
			if k[1] == "seq" {
				kind = yaml.SequenceNode
			} else if k[1] == "map" {
				kind = yaml.MappingNode
			}
		} else if q := quotedRE.FindStringSubmatch(what); q != nil {
			value, _ = strconv.Unquote(q[0])
		}
		if path := fieldAt(&doc, line, kind, value, goType); path != "" {
			msgs[i] = fmt.Sprintf("%s (line %d): %s", path, line, what)
		}
	}
	return &yaml.TypeError{Errors: msgs}
}

// quotedRE is the value quoted at the start of a message of this
// package's own (Duration's).
var quotedRE = regexp.MustCompile(`^"(?:[^"\\]|\\.)*"`)

// wrongKind says what a field of Go type goType takes, for a value of
// YAML tag tag (str, int, seq, map...) written as value.
func wrongKind(tag, value, goType string) string {
	var takes string
	switch {
	case strings.HasPrefix(goType, "uint"):
		// -1, say, or a number past the type's range.
		takes = fmt.Sprintf("must be a whole number from 0 to %s", maxOf(goType))
	case strings.HasPrefix(goType, "int"):
		if tag == "int" || tag == "float" {
			// A number too large for the field (yaml.v3 cuts one with a
			// fraction to a whole number without a word; fractions
			// catches those).
			takes = fmt.Sprintf("must be a whole number from %s to %s", minOf(goType), maxOf(goType))
		} else {
			takes = "must be a whole number"
		}
	case goType == "config.Duration":
		takes = "must be a duration such as 30s or 5m"
	case goType == "bool" || goType == "*bool":
		takes = "must be true or false"
	case goType == "string" || goType == "float64":
		takes = "must be a single value"
	case strings.HasPrefix(goType, "[]"):
		takes = "must be a list"
	default:
		takes = "must be a mapping of keys to values"
	}
	switch tag {
	case "seq":
		return takes + ", got a list"
	case "map":
		return takes + ", got a mapping"
	default:
		return fmt.Sprintf("%s, got %q", takes, value)
	}
}

// maxOf and minOf are the bounds of the integer type named goType.
func maxOf(goType string) string {
	bits := intBits(goType)
	if strings.HasPrefix(goType, "uint") {
		return strconv.FormatUint(1<<bits-1, 10)
	}
	return strconv.FormatInt(1<<(bits-1)-1, 10)
}

func minOf(goType string) string { return strconv.FormatInt(-1<<(intBits(goType)-1), 10) }

func intBits(goType string) uint {
	n, err := strconv.Atoi(strings.TrimLeft(goType, "uint"))
	if err != nil {
		return 64 // int and uint, on the 64-bit machines dnsroll runs on
	}
	return uint(n)
}

// fieldAt is the path ("nameservers[1].label") of the value at line in
// doc. Several values can begin on one line, in a flow mapping such as
// {label: ns1, region: us-east}, or a block mapping and its first key's
// value: the first of kind is taken (a scalar: written as value, which
// yaml.v3 cuts to "https:/..." when long), else the first of any kind.
// Of several of kind, the one whose field has Go type goType, as yaml.v3
// names it, is taken: a block mapping written for a list begins on the
// line of its first value, a mapping too. It is "" when none begins there.
func fieldAt(doc *yaml.Node, line int, kind yaml.Kind, value, goType string) string {
	var first, ofKind, typed string
	var walk func(n *yaml.Node, path string, t reflect.Type)
	walk = func(n *yaml.Node, path string, t reflect.Type) {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if n.Line == line && n.Kind != yaml.DocumentNode {
			name := path
			if name == "" {
				name = "the fleet" // the top level, as explainUnknown names it
			}
			if first == "" {
				first = name
			}
			// A value inside the one found begins on its line too (the
			// first item of a list, its first field): the inner one is
			// the value meant.
			if n.Kind == kind && (kind != yaml.ScalarNode || written(n.Value, value)) && (ofKind == "" || inside(name, ofKind)) {
				ofKind = name
				if t != nil && goType != "" && typeNamed(t, goType) {
					typed = name
				}
			}
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, t)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				var ft reflect.Type
				if t != nil && t.Kind() == reflect.Struct {
					if f, ok := yamlField(t, n.Content[i].Value); ok {
						ft = f.Type
					}
				} else if t != nil && t.Kind() == reflect.Map {
					ft = t.Elem()
				}
				walk(n.Content[i+1], joinPath(path, n.Content[i].Value), ft)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				var et reflect.Type
				if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
					et = t.Elem()
				}
				walk(c, fmt.Sprintf("%s[%d]", path, i), et)
			}
		}
	}
	walk(doc, "", reflect.TypeFor[Fleet]())
	return cmp.Or(typed, ofKind, first)
}

// typeNamed reports whether yaml.v3 names t goType, or names the slice
// a type such as Labels decodes itself into, []string.
func typeNamed(t reflect.Type, goType string) bool {
	return t.String() == goType || t.Kind() == reflect.Slice && reflect.SliceOf(t.Elem()).String() == goType
}

// inside reports whether path names a value within the one at outer.
func inside(path, outer string) bool {
	return strings.HasPrefix(path, outer+".") || strings.HasPrefix(path, outer+"[")
}

// written reports whether a message's value shown stands for value: the
// same, or its first 7 characters and "..." as yaml.v3 shows a long one.
func written(value, shown string) bool {
	if cut, ok := strings.CutSuffix(shown, "..."); ok && len(shown) == 10 {
		return strings.HasPrefix(value, cut)
	}
	return value == shown
}

// unmarshaler is a type that decodes its own YAML (Duration, Labels).
var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// fractions lists the numbers written with a fraction or an exponent
// where t takes a whole number, as path (line): message. yaml.v3 decodes
// 12.7 into an int as 12 without a word, so firewall_id: 12.7 would name
// another firewall and attempts: 2.9 would make two attempts.
func fractions(n *yaml.Node, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	var out []string
	switch {
	case n.Kind == yaml.DocumentNode:
		for _, c := range n.Content {
			out = append(out, fractions(c, t, path)...)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := yamlField(t, n.Content[i].Value); ok {
				out = append(out, fractions(n.Content[i+1], f.Type, joinPath(path, n.Content[i].Value))...)
			}
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, fractions(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))...)
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			out = append(out, fractions(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" && isWhole(t.Kind()):
		out = append(out, fmt.Sprintf("%s (line %d): must be a whole number, got %s", path, n.Line, n.Value))
	}
	return out
}

func isWhole(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// yamlField is the field of struct type t that YAML key key decodes into.
func yamlField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// oneDocument refuses a second YAML document after the fleet: the
// decoder would drop it, and with it whatever it set. A trailing "---" or
// comments alone are no document.
func oneDocument(dec *yaml.Decoder) error {
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after the fleet: %w", err)
		}
		if len(next.Content) > 0 && next.Content[0].ShortTag() != "!!null" {
			return fmt.Errorf("the file has a second YAML document (line %d), which would be ignored: a fleet is one document; "+
				"move its settings into the first, or remove the --- before it", next.Content[0].Line)
		}
	}
}

// shown is a default value as the fleet file would write it: a list as
// [udp, tcp]. A list of mappings is not shown.
func shown(v reflect.Value) string {
	if v.Kind() != reflect.Slice {
		return fmt.Sprint(v.Interface())
	}
	if k := v.Type().Elem().Kind(); k == reflect.Struct || k == reflect.Pointer || k == reflect.Map {
		return ""
	}
	parts := make([]string, v.Len())
	for i := range parts {
		parts[i] = fmt.Sprint(v.Index(i).Interface())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// zeroDefaulted refuses a field written as 0 (or 0s) that the defaults
// then replaced: the operator asked for none and would get the default.
// Fields where 0 means something (bake: 0s, failure_limit: 0) keep it, so
// only a value the defaults changed is refused. n is the YAML node of v,
// the defaulted fleet or a part of it, at path.
func zeroDefaulted(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() || n.Kind == yaml.ScalarNode {
			return nil // a pointer tells "unset" from 0 already
		}
		v = v.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && v.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if f, ok := yamlField(v.Type(), key); ok {
				if err := zeroDefaulted(n.Content[i+1], v.FieldByIndex(f.Index), joinPath(path, key)); err != nil {
					return err
				}
			}
		}
	case n.Kind == yaml.SequenceNode && len(n.Content) == 0 && v.Kind() == reflect.Slice && v.Len() > 0:
		what := ", " + shown(v)
		if what == ", " {
			what = " " + path[strings.LastIndex(path, ".")+1:]
		}
		return fieldErr(path, "is [], which means the default%s: leave it out for the default, or list the values you want", what)
	case n.Kind == yaml.SequenceNode && v.Kind() == reflect.Slice:
		for i, c := range n.Content {
			if i < v.Len() {
				if err := zeroDefaulted(c, v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" && !v.IsZero():
		written := reflect.New(v.Type())
		if n.Decode(written.Interface()) == nil && written.Elem().IsZero() {
			value := n.Value
			if value == "" {
				value = `""`
			}
			return fieldErr(path, "is %s, which means the default, %s: leave it out for the default, or set the value you want", value, shown(v))
		}
	}
	return nil
}

// valueErrors are the values of a fleet file that did not decode, each
// named by its field and line: one per line, without yaml.v3's heading.
type valueErrors struct{ *yaml.TypeError }

func (e valueErrors) Error() string {
	if len(e.Errors) == 1 {
		return e.Errors[0]
	}
	return fmt.Sprintf("%d values to fix:\n  %s", len(e.Errors), strings.Join(e.Errors, "\n  "))
}

func (e valueErrors) Unwrap() error { return e.TypeError }

// listed is err with a *yaml.TypeError's messages as valueErrors.
func listed(err error) error {
	if te, ok := err.(*yaml.TypeError); ok {
		return valueErrors{te}
	}
	return err
}
