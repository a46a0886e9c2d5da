package childenv_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// notForWorkers are the places that start programs with dnsroll's own
// environment on purpose, or only in tests and benchmarks: never on a
// worker or an API server that holds the production secrets.
var notForWorkers = map[string]string{
	"cmd/dnsroll/cluster.go":             "the lab cluster's own workers need the lab's settings",
	"lb/channel/sshdtest/sshdtest.go":    "a test sshd",
	"internal/signzone/signzone.go":      "signs test zones",
	"internal/temporaltest/devserver.go": "a test's Temporal dev server",
	"internal/pid1/pid1.go":              "dnsroll as PID 1 starts dnsroll itself, the worker, which needs the worker's environment",
}

// builtElsewhere are the functions that set a command's Env from one
// childenv built elsewhere, by file and function.
var builtElsewhere = map[string]string{
	"provision/exec.go CommandContext": "the environment provision.go builds with childenv.Minimal",
}

// Every program dnsroll starts from production code gets an environment
// chosen for it (childenv), not the worker's, which holds LINODE_TOKEN,
// webhook secrets and API tokens: a function that calls exec.Command or
// exec.CommandContext, or makes an exec.Cmd, also sets the command's Env
// to what a childenv function returns.
func TestEveryProgramStartedGetsAChosenEnvironment(t *testing.T) {
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case "e2e", "lab", "bench", "scripts", ".git":
				return filepath.SkipDir // the lab, tests and benchmarks
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || notForWorkers[filepath.ToSlash(rel)] != "" {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
		if err != nil {
			return err
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			starts, setsEnv := false, builtElsewhere[filepath.ToSlash(rel)+" "+fn.Name.Name] != ""
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if x, ok := n.X.(*ast.Ident); ok && x.Name == "exec" && (n.Sel.Name == "Command" || n.Sel.Name == "CommandContext" || n.Sel.Name == "Cmd") {
						starts = true
					}
				case *ast.AssignStmt:
					for i, lhs := range n.Lhs {
						if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "Env" && i < len(n.Rhs) && fromChildenv(n.Rhs[i]) {
							setsEnv = true
						}
					}
				}
				return true
			})
			if starts && !setsEnv {
				t.Errorf("%s: %s starts a program without setting its Env (childenv.Minimal): it would inherit the worker's secrets", rel, fn.Name.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fromChildenv says whether e is a call of a childenv function.
func fromChildenv(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "childenv"
}
