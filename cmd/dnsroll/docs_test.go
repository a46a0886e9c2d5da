package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/dnsroll/dnsroll/internal/testfiles"
)

// The dnsroll command lines the README and docs/ show, in code blocks and
// code spans, name real commands, subcommands and flags: an operator
// copies them.
func TestDocsCommandLinesUseRealFlags(t *testing.T) {
	flagsOf := map[string][]string{} // "rollout start": its flags
	checked := 0
	for name, text := range userDocs(t) {
		for _, line := range docCode(text) {
			for _, m := range dnsrollLine.FindAllStringSubmatch(line.text, -1) {
				if _, ok := commands[m[1]]; !ok && strings.HasPrefix(strings.TrimSpace(line.text), "dnsroll "+m[1]) {
					t.Errorf("%s:%d: dnsroll has no command %s: %s", name, line.n, m[1], strings.TrimSpace(line.text))
				}
				for _, what := range docCommands(t, m[1], m[2]) {
					fs, ok := flagsOf[what]
					if !ok {
						fs = helpFlags(t, strings.Fields(what)...)
						flagsOf[what] = fs
					}
					for _, f := range docFlag.FindAllStringSubmatch(m[3], -1) {
						checked++
						if !slices.Contains(fs, f[1]) && f[1] != "help" {
							t.Errorf("%s:%d: dnsroll %s has no --%s: %s", name, line.n, what, f[1], strings.TrimSpace(line.text))
						}
					}
				}
			}
		}
	}
	if checked < 5 {
		t.Errorf("checked %d flags in the docs' dnsroll command lines; the parsing below has gone wrong", checked)
	}
}

// userDocs are the README and docs/*.md, by their path in the repository.
func userDocs(t *testing.T) map[string]string { return testfiles.UserDocs(t, "../..") }

var (
	// dnsroll, a command, perhaps a subcommand (or several: abort|rollback),
	// and the rest up to a comment, another command or the end.
	dnsrollLine = regexp.MustCompile(`(?:^|[\s/(])dnsroll ([a-z]+)(?: ([a-z][a-z|-]*))?([^#;&` + "`" + `]*)`)
	docFlag     = regexp.MustCompile(`(?:^|\s)--?([a-z][a-z0-9-]*)`)
)

type docLine struct {
	n    int
	text string
}

// docCode is the code of a Markdown text: the lines of its fenced blocks,
// with lines continued by a backslash joined, and its code spans.
func docCode(text string) []docLine {
	var out []docLine
	fenced, cont, from := false, "", 0
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			if cont == "" {
				from = i + 1
			}
			if s, ok := strings.CutSuffix(line, `\`); ok {
				cont += s
				continue
			}
			out = append(out, docLine{from, cont + line})
			cont = ""
			continue
		}
		for _, span := range codeSpan.FindAllStringSubmatch(line, -1) {
			out = append(out, docLine{i + 1, span[1]})
		}
	}
	return out
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// docCommands are the commands a doc's "dnsroll cmd word" names, as
// "cmd" or "cmd sub", each one the CLI has.
func docCommands(t *testing.T, cmd, word string) []string {
	c, ok := commands[cmd]
	if !ok {
		return nil // prose: "dnsroll's", "dnsroll sets"
	}
	subs := subcommands(c.subUsage)
	if len(subs) == 0 || word == "" {
		return []string{cmd}
	}
	var out []string
	for _, sub := range strings.Split(word, "|") {
		if !slices.Contains(subs, sub) {
			t.Errorf("the docs name dnsroll %s %s; its subcommands are %v", cmd, sub, subs)
			continue
		}
		out = append(out, cmd+" "+sub)
	}
	return out
}

// helpFlags are the flags that args' --help lists.
func helpFlags(t *testing.T, args ...string) []string {
	out, errOut, code := cli(t, append(args, "--help")...)
	if code != 0 {
		t.Fatalf("dnsroll %s --help: exit %d, %s", strings.Join(args, " "), code, errOut)
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`).FindAllStringSubmatch(out, -1) {
		flags = append(flags, m[1])
	}
	return flags
}

// Every relative link of the README and docs/ leads to a file of the
// repository and, with a #fragment into a Markdown file, to one of its
// headings as GitHub anchors them: a renamed heading breaks no link
// unseen.
func TestDocsLinksResolve(t *testing.T) {
	docs := userDocs(t)
	anchors := map[string]map[string]bool{}
	links := 0
	for file, text := range docs {
		for i, line := range strings.Split(withoutFences(text), "\n") {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				path, fragment, _ := strings.Cut(target, "#")
				to := file
				if path != "" {
					to = filepath.Join(filepath.Dir(file), path)
				}
				if _, err := os.Stat(filepath.Join("../..", to)); err != nil {
					t.Errorf("%s:%d: link %s: %v", file, i+1, target, err)
					continue
				}
				if fragment == "" || !strings.HasSuffix(to, ".md") {
					continue
				}
				if anchors[to] == nil {
					anchors[to] = headingAnchors(string(repoFile(t, to)))
				}
				if !anchors[to][fragment] {
					t.Errorf("%s:%d: link %s: %s has no heading anchored #%s", file, i+1, target, to, fragment)
				}
			}
		}
	}
	if links < 20 {
		t.Errorf("found %d relative links in the docs; the parsing has gone wrong", links)
	}
}

// mdLink is a Markdown link's or image's target.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// withoutFences is text with the lines of its fenced code blocks blanked,
// so that line numbers stay.
func withoutFences(text string) string {
	lines := strings.Split(text, "\n")
	fenced := false
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			lines[i] = ""
		} else if fenced {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// headingAnchors are the anchors GitHub gives text's headings: lower case,
// spaces to dashes, other punctuation dropped, and -1, -2, ... after a
// repeated one.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(withoutFences(text), -1) {
		title := mdLinkText.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(title)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

var (
	heading    = regexp.MustCompile(`(?m)^#{1,6}\s+(.*?)\s*#*\s*$`)
	mdLinkText = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// Every DNSROLL_*, LINODE_* and TEMPORAL_* variable that dnsroll's own
// code reads is documented where the docs keep it (TEMPORAL_* in the
// README's table, the rest in docs/configuration.md), and every DNSROLL_*
// variable docs/configuration.md's Environment sections name is one the
// code reads: an operator sets what the docs say.
func TestDocsNameEveryEnvironmentVariable(t *testing.T) {
	read := readEnv(t)
	if len(read) < 15 {
		t.Fatalf("found %d variables the code reads: %v; the parsing has gone wrong", len(read), read)
	}
	config := string(repoFile(t, "docs/configuration.md"))
	_, envSections, _ := strings.Cut(config, "\n## Environment")
	readme := string(repoFile(t, "README.md"))
	for name, at := range read {
		home, text := "docs/configuration.md", envSections
		if strings.HasPrefix(name, "TEMPORAL_") {
			home, text = "README.md", readme
		}
		if !strings.Contains(text, "`"+name+"`") {
			t.Errorf("%s reads %s, which %s does not document", at, name, home)
		}
	}
	for _, m := range regexp.MustCompile("`(DNSROLL_[A-Z0-9_]+)`").FindAllStringSubmatch(envSections, -1) {
		if _, ok := read[m[1]]; !ok {
			t.Errorf("docs/configuration.md documents %s, which no dnsroll code reads", m[1])
		}
	}
}

// readEnv are the variables of dnsroll's prefixes that the non-test Go code
// outside internal/, lab/, bench/ and e2e/ (test and lab machinery) reads,
// each with a file that reads it.
func readEnv(t *testing.T) map[string]string {
	reads := regexp.MustCompile(`(?:Getenv|LookupEnv|envOr|FromEnv)\("((?:DNSROLL|LINODE|TEMPORAL)_[A-Z0-9_]+)"`)
	out := map[string]string{}
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		if d.IsDir() {
			switch rel {
			case ".git", "internal", "lab", "bench", "e2e", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range reads.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = rel
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The default docs/configuration.md gives a variable that a flag stands in
// for, "(or `--flag`; ... default `value`", is the flag's, as the command's
// --help prints it.
func TestDocsEnvironmentDefaultsAreTheFlags(t *testing.T) {
	config := string(repoFile(t, "docs/configuration.md"))
	checked := 0
	for _, section := range []struct{ heading, cmd string }{{"## Environment (workers)", "worker"}, {"## Environment (API)", "api"}} {
		_, text, ok := strings.Cut(config, "\n"+section.heading+"\n")
		if !ok {
			t.Fatalf("docs/configuration.md has no %q", section.heading)
		}
		text, _, _ = strings.Cut(text, "\n## ")
		defaults := helpDefaults(t, section.cmd)
		for _, row := range regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\|.*$").FindAllStringSubmatch(text, -1) {
			m := regexp.MustCompile("`--([a-z0-9-]+)`.*?\\bdefault `([^`]+)`").FindStringSubmatch(row[0])
			if m == nil {
				continue
			}
			checked++
			got, ok := defaults[m[1]]
			if !ok {
				t.Errorf("docs/configuration.md: %s: dnsroll %s --help gives --%s no default", row[1], section.cmd, m[1])
				continue
			}
			if got != m[2] && !sameDuration(got, m[2]) {
				t.Errorf("docs/configuration.md: %s defaults to %s; dnsroll %s --%s defaults to %s", row[1], m[2], section.cmd, m[1], got)
			}
		}
	}
	if checked < 5 {
		t.Errorf("checked %d documented defaults; the parsing has gone wrong", checked)
	}
}

// helpDefaults are the "(default X)"s that args' --help gives its flags,
// X unquoted.
func helpDefaults(t *testing.T, args ...string) map[string]string {
	out, errOut, code := cli(t, append(args, "--help")...)
	if code != 0 {
		t.Fatalf("dnsroll %s --help: exit %d, %s", strings.Join(args, " "), code, errOut)
	}
	defaults := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*).*\n(?:    \t.*\n)*?    \t.*\(default ([^)]*)\)$`).FindAllStringSubmatch(out, -1) {
		defaults[m[1]] = strings.Trim(m[2], `"`)
	}
	return defaults
}

func sameDuration(a, b string) bool {
	x, errX := time.ParseDuration(a)
	y, errY := time.ParseDuration(b)
	return errX == nil && errY == nil && x == y
}

// The make command lines of the README and docs/, in code blocks and code
// spans, name the Makefile's targets, and the variables they set are ones
// it reads.
func TestDocsMakeTargetsExist(t *testing.T) {
	makefile := string(repoFile(t, "Makefile"))
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(makefile, -1) {
		targets[m[1]] = true
	}
	checked := 0
	for name, text := range userDocs(t) {
		for _, line := range docCode(text) {
			code, _, _ := strings.Cut(line.text, " #")
			for _, m := range makeLine.FindAllStringSubmatch(code, -1) {
				for _, word := range strings.Fields(m[1]) {
					if v, _, ok := strings.Cut(word, "="); ok {
						if !strings.Contains(makefile, "$("+v+")") {
							t.Errorf("%s:%d: the Makefile reads no %s: %s", name, line.n, v, strings.TrimSpace(line.text))
						}
						continue
					}
					checked++
					if !targets[word] {
						t.Errorf("%s:%d: the Makefile has no target %s: %s", name, line.n, word, strings.TrimSpace(line.text))
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked %d make targets in the docs; the parsing has gone wrong", checked)
	}
}

// makeLine is make and its targets and variables, up to a quote or
// another command.
var makeLine = regexp.MustCompile(`(?:^|[\s;&(])make((?: +(?:[a-z][a-z0-9-]*|[A-Z][A-Z0-9_]*=[^\s"'#;&]*))+)`)
