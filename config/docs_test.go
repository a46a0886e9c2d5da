package config

import (
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// docs/configuration.md and the fleet file's YAML keys agree: each field
// its tables name (`canary.steps[]` in the `rollout` section is
// rollout.canary.steps) is a key a fleet file may set, and each key is
// documented: a top-level one in the Top level table, any other in a
// table of its own, as the prefix of one documented below it, or in
// its section's text (the `weight:` of a canary step).
func TestDocsNameEveryFleetKey(t *testing.T) {
	keys := map[string]bool{}
	yamlKeys(reflect.TypeOf(Fleet{}), "", keys)
	if len(keys) < 50 {
		t.Fatalf("found %d YAML keys: %v", len(keys), keys)
	}
	doc, _, _ := strings.Cut(testfiles.UserDocs(t, "..")["docs/configuration.md"], "\n## Environment")
	documented := map[string]bool{}
	sectionText := map[string]string{}
	section := ""
	for _, line := range strings.Split(doc, "\n") {
		if m := docSection.FindStringSubmatch(line); m != nil {
			section = strings.ReplaceAll(strings.Trim(m[1], "`"), "[]", "")
			if section == "Top level" {
				section = ""
			}
			continue
		}
		sectionText[section] += line + "\n"
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(line[1:], "|")
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
			path := strings.TrimPrefix(section+"."+strings.ReplaceAll(m[1], "[]", ""), ".")
			documented[path] = true
			if !keys[path] {
				t.Errorf("docs/configuration.md documents %s, which is no key of a fleet file", path)
			}
		}
	}
	for key := range keys {
		parent, leaf := "", key
		if i := strings.LastIndex(key, "."); i >= 0 {
			parent, leaf = key[:i], key[i+1:]
		}
		below := func(p string) bool { return strings.HasPrefix(p, key+".") }
		text := sectionText[sectionOf(parent, sectionText)]
		inText := strings.Contains(text, "`"+leaf+":") || strings.Contains(text, "{"+leaf+":") || strings.Contains(text, ", "+leaf+":")
		if !documented[key] && (parent == "" || !slices.ContainsFunc(slices.Collect(maps.Keys(documented)), below) && !inText) {
			t.Errorf("fleet key %s is not in docs/configuration.md", key)
		}
	}
}

// docSection is a heading of docs/configuration.md: a `key` names the
// part of the fleet file its tables document.
var docSection = regexp.MustCompile("^## (`[^`]+`|Top level)$")

// yamlKeys adds the YAML keys of t's fields to keys, dotted after prefix,
// through structs, pointers and slices.
func yamlKeys(t reflect.Type, prefix string, keys map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := strings.TrimPrefix(prefix+"."+name, ".")
		keys[key] = true
		yamlKeys(t.Field(i).Type, key, keys)
	}
}

// sectionOf is the section of the docs that documents key: the longest
// of sections that is key or leads to it.
func sectionOf(key string, sections map[string]string) string {
	best := ""
	for s := range sections {
		if s != "" && (key == s || strings.HasPrefix(key, s+".")) && len(s) > len(best) {
			best = s
		}
	}
	return best
}
