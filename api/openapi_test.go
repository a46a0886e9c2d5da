package api

import (
	"context"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	"github.com/dnsroll/dnsroll/activities"
	"github.com/dnsroll/dnsroll/config"
	"github.com/dnsroll/dnsroll/workflows"
)

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

// mustSpec loads and validates openapi.yaml once per test binary.
func mustSpec(tb testing.TB) (*openapi3.T, routers.Router) {
	tb.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(OpenAPI)
		if specErr == nil {
			specErr = specDoc.Validate(loader.Context)
		}
		if specErr == nil {
			specRouter, specErr = gorillamux.NewRouter(specDoc)
		}
	})
	if specErr != nil {
		tb.Fatalf("openapi.yaml: %v", specErr)
	}
	return specDoc, specRouter
}

// checkSpec fails the test unless openapi.yaml documents the request's
// operation and the response's status, and the body and headers match.
func checkSpec(tb testing.TB, req *http.Request, rec *httptest.ResponseRecorder) {
	tb.Helper()
	_, router := mustSpec(tb)
	route, params, err := router.FindRoute(req)
	if err != nil {
		tb.Errorf("%s %s is not in openapi.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		tb.Errorf("%s %s → %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, rec.Code, err, rec.Body)
	}
}

// The spec and the router list the same operations.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc, _ := mustSpec(t)
	var spec []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			spec = append(spec, method+" "+path)
		}
	}
	var routed []string
	h := New(Config{Backend: newFake()}).Handler().(chi.Routes)
	err := chi.Walk(h, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(spec)
	slices.Sort(routed)
	if !slices.Equal(spec, routed) {
		t.Errorf("openapi.yaml operations:\n  %s\nrouter:\n  %s", strings.Join(spec, "\n  "), strings.Join(routed, "\n  "))
	}
}

// recordingTB collects errors instead of failing, to test checkSpec itself.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) { r.errs = append(r.errs, format) }

// checkSpec is not vacuous: responses that drift from the spec fail it.
func TestCheckSpecCatchesDrift(t *testing.T) {
	for _, tt := range []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"missing required field", "POST", "/rollouts", 201, `{"id":"rollout-lab:r","workflow_id":"rollout-lab","run_id":"r","fleet":"lab"}`},
		{"undocumented field", "GET", "/healthz", 200, `{"status":"ok","temporal":"reachable","extra":1}`},
		{"undocumented status", "GET", "/rollouts/rollout-lab", 409, `{"code":"conflict","message":"x"}`},
		{"bad enum", "GET", "/rollouts", 200, `{"rollouts":[{"id":"a","workflow_id":"a","run_id":"b","fleet":"lab","phase":"dancing","state":"running","started_at":"2026-11-23T10:00:00Z","links":{"self":"","abort":"","rollback":"","approve":""}}]}`},
		{"undocumented route", "GET", "/rollouts/x/y/z", 200, `{}`},
	} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(tt.status)
		rec.WriteString(tt.body)
		r := &recordingTB{TB: t}
		checkSpec(r, httptest.NewRequest(tt.method, tt.path, nil), rec)
		if len(r.errs) == 0 {
			t.Errorf("%s: checkSpec accepted it", tt.name)
		}
	}
}

// The phases openapi.yaml documents are exactly the workflow's, in order,
// and the API's filter accepts exactly those.
func TestOpenAPIPhasesMatchTheWorkflow(t *testing.T) {
	doc, _ := mustSpec(t)
	var enum []string
	for _, v := range doc.Components.Schemas["Phase"].Value.Enum {
		enum = append(enum, v.(string))
	}
	var phases []string
	for _, p := range Phases {
		phases = append(phases, string(p))
	}
	if !slices.Equal(enum, phases) {
		t.Errorf("openapi.yaml Phase enum\n%v\ndiffers from workflows.Phases\n%v", enum, phases)
	}
	for _, p := range declaredPhases(t) {
		if !slices.Contains(Phases, p) {
			t.Errorf("phase %s is declared in package workflows but missing from workflows.Phases (so from the API's filter and openapi.yaml)", p)
		}
	}
}

// declaredPhases are the values of every Phase constant that package
// workflows declares, in any workflow's file: a new workflow's phases are
// found without anyone listing them here.
func declaredPhases(tb testing.TB) []workflows.Phase {
	tb.Helper()
	files, err := filepath.Glob("../workflows/*.go")
	if err != nil || len(files) == 0 {
		tb.Fatalf("workflows sources: %v (%d files)", err, len(files))
	}
	var out []workflows.Phase
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(gotoken.NewFileSet(), name, nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			if id, ok := spec.Type.(*ast.Ident); !ok || id.Name != "Phase" {
				return true
			}
			for _, v := range spec.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					p, _ := strconv.Unquote(lit.Value)
					out = append(out, workflows.Phase(p))
				}
			}
			return true
		})
	}
	if len(out) < len(Phases)/2 {
		tb.Fatalf("found only %d Phase constants in ../workflows: %v", len(out), out)
	}
	return out
}

// The load balancer start bodies openapi.yaml documents have exactly the
// request types' fields: LBReplaceRequest is the workflow's input itself,
// so a field added there (say, a whole fleet config) fails here before the
// API accepts it unreviewed. So have the schemas of a rollout's changes
// against the live revision, which a response carries as the plan made
// them.
func TestOpenAPIRequestsMatchTheirTypes(t *testing.T) {
	doc, _ := mustSpec(t)
	for schema, v := range map[string]any{"LBReplaceRequest": LBReplaceRequest{}, "LBUpdateRequest": LBUpdateRequest{},
		"Changes": activities.Changes{}, "ChangeNames": activities.Names{}} {
		var spec, fields []string
		for name := range doc.Components.Schemas[schema].Value.Properties {
			spec = append(spec, name)
		}
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			fields = append(fields, name)
		}
		slices.Sort(spec)
		slices.Sort(fields)
		if !slices.Equal(spec, fields) {
			t.Errorf("openapi.yaml %s has %v; the Go type has %v", schema, spec, fields)
		}
	}
}

// Every field the workflows' statuses carry is in the response schemas
// that hold them, whose additionalProperties are false: a client that
// validates responses against the spec would refuse one with a field the
// spec lacks (a replacement's zone records, once).
func TestOpenAPIResponsesHaveTheStatusFields(t *testing.T) {
	doc, _ := mustSpec(t)
	status := doc.Components.Schemas["LBReplacement"].Value.Properties["status"].Value
	for _, c := range []struct {
		schema string
		props  map[string]*openapi3.SchemaRef
		typ    reflect.Type
	}{
		{"Rollout", doc.Components.Schemas["Rollout"].Value.Properties, reflect.TypeOf(workflows.Status{})},
		{"LBReplacement.status", status.Properties, reflect.TypeOf(workflows.LBReplaceStatus{})},
	} {
		for name := range jsonFields(c.typ) {
			if _, ok := c.props[name]; !ok {
				t.Errorf("openapi.yaml %s has no %s, which %s carries", c.schema, name, c.typ)
			}
		}
	}
}

// The name and revision rules openapi.yaml gives clients are the config's
// own (config.FleetNamePattern, config.RevisionPattern): a client that
// validates against the spec sends nothing the API then refuses.
func TestOpenAPIPatternsAreTheConfigRules(t *testing.T) {
	doc, _ := mustSpec(t)
	if got := doc.Components.Schemas["FleetName"].Value.Pattern; got != config.FleetNamePattern {
		t.Errorf("openapi.yaml FleetName pattern %q, want config.FleetNamePattern %q", got, config.FleetNamePattern)
	}
	for name, schema := range doc.Components.Schemas {
		if prop := schema.Value.Properties["revision"]; prop != nil && prop.Value.Pattern != "" && prop.Value.Pattern != config.RevisionPattern {
			t.Errorf("openapi.yaml %s.revision pattern %q, want config.RevisionPattern %q", name, prop.Value.Pattern, config.RevisionPattern)
		}
	}
}
