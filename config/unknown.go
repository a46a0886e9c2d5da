package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A misspelt key is the most common mistake in a fleet file. yaml.v3 says
// "line 47: field aproval not found in type config.Rollout"; the operator
// knows the file's sections, not this package's types, so the message is
// rewritten to "line 47: rollout has no field "aproval"; did you mean
// approval?".

// unknownRE matches yaml.v3's message for a key the type does not have.
var unknownRE = regexp.MustCompile(`(?s)^(line \d+: )?field (.*) not found in type (\S+)$`)

// section is where a struct type of the config sits in the file, and the
// keys it takes.
type section struct {
	path string
	keys []string
}

// sections maps each struct type reachable from Fleet ("config.Rollout")
// to its section, found from the yaml tags.
var sections = func() map[string]section {
	out := map[string]section{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Fleet]().PkgPath() {
			return
		}
		if _, seen := out[t.String()]; seen {
			return
		}
		sec := section{path: path}
		out[t.String()] = sec
		for i := range t.NumField() {
			key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if key == "" || key == "-" {
				continue
			}
			sec.keys = append(sec.keys, key)
			sub := key
			if path != "the fleet" {
				sub = path + "." + key
			}
			walk(t.Field(i).Type, sub)
		}
		out[t.String()] = sec
	}
	walk(reflect.TypeFor[Fleet](), "the fleet")
	return out
}()

// explain rewrites the messages of a decoding error for the operator:
// unknown keys (explainUnknown), values of the wrong kind (explainValues)
// and YAML syntax errors (explainSyntax).
func explain(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(explainUnknown(err), &te) {
		return explainSyntax(data, err)
	}
	return explainValues(data, te)
}

// unquotedRevisionRE is a {revision} path inside a flow mapping, not in
// quotes: YAML reads its braces as the mapping's.
var unquotedRevisionRE = regexp.MustCompile(`\{[^"']*[:,]\s*[^"'\s,{}]*\{revision\}`)

// explainSyntax adds to a YAML syntax error the likely cause, which the
// parser's message rarely names and whose line it often gives as the
// start of the enclosing block: a quote never closed, a tab in an
// indentation, an unquoted {revision} inside { }, or an indentation that
// does not line up.
func explainSyntax(data []byte, err error) error {
	if unclosedQuoteRE.MatchString(err.Error()) {
		return fmt.Errorf("%w: %s", err, unclosedQuote(data))
	}
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		switch {
		case strings.Contains(indent, "\t"):
			return fmt.Errorf("%w: line %d is indented with a tab, and YAML indents with spaces alone", err, i+1)
		case unquotedRevisionRE.MatchString(line):
			return fmt.Errorf("%w: line %d has {revision} inside { }, where YAML reads its braces as the mapping's: quote the path, as file: \"zones/{revision}/example.com.zone\"", err, i+1)
		}
	}
	if strings.Contains(err.Error(), "did not find expected") || strings.Contains(err.Error(), "mapping values are not allowed") {
		return fmt.Errorf("%w: check the indentation there and on the lines after it: keys of one section line up, each nested one by the same number of spaces", err)
	}
	return err
}

// unclosedQuoteRE is yaml.v3's error for a quoted value whose closing
// quote it did not find before the end of the file; it has no other.
var unclosedQuoteRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?found unexpected end of stream$`)

// unclosedQuote names the line on which the unclosed quote in data opens.
// yaml.v3 gives that line, unless it is the first: then it gives the end
// of the file's, or none. With a newline added, the end of the file is on
// a line of its own, past the last, where no quote opens.
func unclosedQuote(data []byte) string {
	const why = "YAML read on to the end of the file for its closing quote"
	lines := strings.Split(string(data), "\n")
	var n yaml.Node
	m := unclosedQuoteRE.FindStringSubmatch(fmt.Sprint(yaml.Unmarshal(append(slices.Clip(data), '\n'), &n)))
	line := 0
	if m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	if line == len(lines)+1 {
		line = 1
	}
	if line < 1 || line > len(lines) || !strings.ContainsAny(lines[line-1], `'"`) {
		return "a quote is never closed: " + why
	}
	return fmt.Sprintf("the quote opened on line %d is never closed: %s", line, why)
}

// explainUnknown rewrites the unknown-key errors in err to name the
// file's section and the nearest key it takes; other errors pass as they
// are.
func explainUnknown(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		msgs[i] = e
		m := unknownRE.FindStringSubmatch(e)
		if m == nil {
			continue
		}
		sec, ok := sections[m[3]]
		if !ok {
			continue
		}
		msgs[i] = fmt.Sprintf("%s%s has no field %q", m[1], sec.path, m[2])
		if why, ok := perRollout[sec.path+"."+m[2]]; ok {
			msgs[i] += "; " + why
		} else if near := nearest(m[2], sec.keys); near != "" {
			msgs[i] += "; did you mean " + near + "?"
		} else {
			msgs[i] += " (it takes " + strings.Join(sec.keys, ", ") + ")"
		}
	}
	return &yaml.TypeError{Errors: msgs}
}

// perRollout are the settings a rollout request makes, which a fleet
// file may not: each would hold for every rollout after.
var perRollout = map[string]string{
	"probe.allow_new_ksk": "it is asked for per rollout (dnsroll rollout start --allow-new-ksk, " +
		`API "allow_new_ksk": true), for the one rollout that moves to a key-signing key the parent's DS already names`,
	"probe.allow_serial_decrease": "it is asked for per rollout (dnsroll rollout start --allow-serial-decrease, " +
		`API "allow_serial_decrease": true), to go back to an older revision once, so that no later rollout goes back by mistake`,
}

// nearest is the key closest to s by edit distance, if it is close enough
// to be a misspelling of it: at most a third of its letters, and 2.
func nearest(s string, keys []string) string {
	best, bestD := "", min(2, max(1, len(s)/3))+1
	for _, k := range keys {
		if d := editDistance(strings.ToLower(s), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the number of insertions, deletions, substitutions and
// swaps of two neighbours that make a into b (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
