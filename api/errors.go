package api

import (
	"bytes"
	"cmp"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.temporal.io/api/serviceerror"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// ErrorBody is every error response.
type ErrorBody struct {
	// Code is dnsroll's error code (invalid, not_found, conflict, internal)
	// or an HTTP-level one (unauthorized, forbidden, too_large,
	// method_not_allowed).
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field that is wrong, for 400s about one.
	Field string `json:"field,omitempty"`
	// RolloutID names the rollout a 409 is about.
	RolloutID string `json:"rollout_id,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// httpError is an error with its response already decided.
type httpError struct {
	status int
	body   ErrorBody
}

func (e *httpError) Error() string { return e.body.Message }

func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, body: ErrorBody{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// conflictAbout is a 409 about rollout id, which the body names.
func conflictAbout(id, format string, args ...any) *httpError {
	e := errorf(http.StatusConflict, dnsroll.ECONFLICT, format, args...)
	e.body.RolloutID = id
	return e
}

// fieldError is a 400 about one request field; the message starts with its name.
func fieldError(field, format string, args ...any) *httpError {
	e := errorf(http.StatusBadRequest, dnsroll.EINVALID, "%s: %s", field, fmt.Sprintf(format, args...))
	e.body.Field = field
	return e
}

// StatusCode maps dnsroll's error codes to HTTP statuses. It is the only
// place that does.
func StatusCode(code string) int {
	switch code {
	case dnsroll.EINVALID:
		return http.StatusBadRequest
	case dnsroll.ENOTFOUND:
		return http.StatusNotFound
	case dnsroll.ECONFLICT:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// fail writes err as JSON. Internal errors are logged in full and shown as
// a generic message with the request ID to look them up by.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) && r.Context().Err() != nil {
		// The client hung up (Ctrl-C on a plan or a --wait): whatever
		// the backend said after that is no fault of the API's, and no
		// one reads the answer.
		s.log.Info("client went away", "request_id", RequestID(r.Context()), "error", err)
		he = errorf(statusClientClosed, codeCanceled, "the client closed the request")
	}
	if he == nil && temporalUnreachable(err) {
		s.log.Error("Temporal did not answer", "request_id", RequestID(r.Context()), "error", err)
		w.Header().Set("Retry-After", "5")
		// The client never talks to Temporal: say that the API got no
		// answer and what to check, without the address itself (the
		// log has it, with the error).
		he = errorf(http.StatusServiceUnavailable, codeUnavailable, "the API got no answer from Temporal (down, unreachable or overloaded): "+
			"check the API's Temporal address (--temporal-address or TEMPORAL_ADDRESS) and that the Temporal frontend there is up, then try again; "+
			"the API's log has the details under this request_id")
	}
	if he == nil {
		code := dnsroll.ErrorCode(err)
		he = errorf(StatusCode(code), code, "%s", err.Error())
		if code == dnsroll.EINTERNAL {
			s.log.Error("request failed", "request_id", RequestID(r.Context()), "error", err)
			he.body.Message = "internal error; the API's log has the details under this request_id"
		}
	}
	body := he.body
	body.RequestID = RequestID(r.Context())
	if he.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dnsroll"`)
	}
	writeJSON(w, he.status, body)
}

// statusClientClosed is the status a request gets when its client hung
// up before the answer (nginx's 499): for the log and the metrics, which
// should not count it as a server error.
const statusClientClosed = 499

// temporalUnreachable reports whether err is Temporal's frontend not
// answering (down, restarting, overloaded), which a retry may clear: not
// a fault of the API.
func temporalUnreachable(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var busy *serviceerror.ResourceExhausted
	return errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &busy)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads one JSON object into v, strictly: unknown fields, wrong types,
// trailing data and oversized bodies are errors that name what is wrong. An
// empty body leaves v alone when emptyOK.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	if err := bodyOnly(r, reflect.TypeOf(v)); err != nil {
		return err
	}
	if r.ContentLength > s.cfg.MaxBody {
		return tooLarge(s.cfg.MaxBody)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		return decodeError(err, s.cfg.MaxBody)
	}
	if bytes.HasPrefix(data, []byte("\ufeff")) {
		// Some editors and shells (PowerShell's UTF-8 files) write one;
		// encoding/json would say only "invalid character 'ï'".
		return fieldError("body", "starts with a byte order mark (EF BB BF), which JSON does not allow: send the JSON without it")
	}
	if err := formBody(data); err != nil {
		return err
	}
	if err := checkFields(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == io.EOF && emptyOK {
		return nil
	}
	if err == nil {
		// Only whitespace may follow the object.
		if _, err = dec.Token(); err == io.EOF {
			return nil
		}
		return fieldError("body", "unexpected data after the JSON object")
	}
	return decodeError(err, s.cfg.MaxBody)
}

// checkFields reads a request body against the Go type it is decoded
// into, and names the full path of what encoding/json would refuse or
// report without one: a field given twice in any case (encoding/json keeps
// the last, so {"fleet":"lab","fleet":"prod"} would start prod while
// whoever reads the first sees lab), an unknown field (which it names by
// its leaf), and a string that a text value such as a duration refuses
// (which it names by nothing). JSON that does not parse is left to the
// decoder, which says where.
func checkFields(data []byte, t reflect.Type) error {
	type container struct {
		path    string          // its field path, such as update
		typ     reflect.Type    // what it decodes into; nil when unchecked
		keys    map[string]bool // the keys seen, lower-cased; nil in an array
		wantKey bool            // in an object, a key comes next
		field   string          // in an object, the key whose value comes next
		next    reflect.Type    // the type of that value, or of each element
	}
	var stack []*container
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	next := t
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *container
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if name, ok := tok.(string); ok && top != nil && top.wantKey {
			if top.keys[strings.ToLower(name)] {
				return fieldError(fieldPath(top.path, name), "is given twice; give each field once")
			}
			top.keys[strings.ToLower(name)], top.wantKey, top.field = true, false, name
			top.next = nil
			switch {
			case top.typ == nil:
			case top.typ.Kind() == reflect.Map:
				top.next = top.typ.Elem()
			case top.typ.Kind() == reflect.Struct:
				f, ok := jsonField(top.typ, name)
				if !ok {
					return unknownField(fieldPath(top.path, name), top.typ)
				}
				top.next = f
			}
			continue
		}
		var path string
		if top != nil {
			path = fieldPath(top.path, top.field)
			next = top.next
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			c := &container{path: path, typ: decodedAs(next)}
			if tok == json.Delim('{') {
				c.keys, c.wantKey = map[string]bool{}, true
				if c.typ != nil && c.typ.Kind() != reflect.Struct && c.typ.Kind() != reflect.Map {
					c.typ = nil // the wrong JSON type: the decoder says so
				}
			} else if c.typ != nil && (c.typ.Kind() == reflect.Slice || c.typ.Kind() == reflect.Array) {
				c.next = c.typ.Elem()
			} else {
				c.typ = nil
			}
			stack = append(stack, c)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if text, ok := tok.(string); ok {
				if err := unmarshalText(next, text); err != nil {
					return fieldError(path, "%v", err)
				}
			}
		}
		// A value ended: the object holding it waits for its next key.
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey, stack[n-1].field = true, ""
		}
	}
}

// decodedAs is the type whose shape a JSON value must have to decode into
// t: pointers followed, and nil where the value decodes itself (an
// interface, a json.Unmarshaler) and so has no shape to check.
func decodedAs(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil
	}
	return t
}

// unmarshalText gives the error a text value of type t (such as a
// duration) returns for s; nil for any other type.
func unmarshalText(t reflect.Type, s string) error {
	t = decodedAs(t)
	if t == nil || !reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return nil
	}
	return reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
}

// jsonField finds the field of struct t that encoding/json decodes key
// into, matching names as it does (exactly, else in any case).
func jsonField(t reflect.Type, key string) (reflect.Type, bool) {
	var folded reflect.Type
	for name, f := range jsonFields(t) {
		if name == key {
			return f.Type, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = f.Type
		}
	}
	return folded, folded != nil
}

// jsonFields yields the fields of struct type t that encoding/json
// decodes, by their JSON names, in their order.
func jsonFields(t reflect.Type) iter.Seq2[string, reflect.StructField] {
	return func(yield func(string, reflect.StructField) bool) {
		for _, f := range reflect.VisibleFields(t) {
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || tag == "-" || (f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct) {
				continue
			}
			if !yield(cmp.Or(tag, f.Name), f) {
				return
			}
		}
	}
}

// formFieldRE is a form's field name, as a request's fields are named.
var formFieldRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

// formBody refuses a body that is form data (fleet=lab&revision=B), as
// curl -d fleet=lab sends, which encoding/json would call a misspelt false.
func formBody(data []byte) error {
	if json.Valid(data) || !bytes.Contains(data, []byte("=")) {
		return nil
	}
	q, err := url.ParseQuery(string(bytes.TrimSpace(data)))
	if err != nil || len(q) == 0 {
		return nil
	}
	var names, fields []string
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !formFieldRE.MatchString(name) {
			return nil
		}
		names, fields = append(names, name+"=..."), append(fields, fmt.Sprintf("%q: ...", name))
	}
	return fieldError("body", "is form data (%s), but requests are JSON: {%s}, with Content-Type: application/json",
		strings.Join(names, ", "), strings.Join(fields, ", "))
}

// bodyOnly refuses query parameters on a request whose fields, those of
// struct type t, go in its JSON body: the handler would never read them,
// so POST /rollouts?revision=B would roll out the fleet's last revision
// instead, and ?dry_run=true would start a rollout. A request that takes
// no body (t has no fields) reads its own parameters.
func bodyOnly(r *http.Request, t reflect.Type) error {
	t = decodedAs(t)
	if r.URL.RawQuery == "" || t == nil || t.Kind() != reflect.Struct || t.NumField() == 0 {
		return nil
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	if len(q) == 0 {
		return nil
	}
	name := slices.Sorted(maps.Keys(q))[0]
	if _, ok := jsonField(t, name); ok {
		return fieldError(name, "goes in the JSON body, not the query: {%q: ...}", name)
	}
	hint := ""
	if r.URL.Path == Rollouts.Path {
		hint = " (a dry run of a rollout is POST /plans, with the same body)"
	}
	return fieldError(name, "is not a parameter: %s %s takes no query parameters, and its fields go in the JSON body%s", r.Method, r.URL.Path, hint)
}

// unknownField refuses a key that struct type t has no field for, listing
// those a request may give: a start says who in requested_by, a signal in
// by. A field tagged api:"refused" is one the API sets itself.
func unknownField(path string, t reflect.Type) *httpError {
	var names []string
	for name, f := range jsonFields(t) {
		if f.Tag.Get("api") != "refused" {
			names = append(names, name)
		}
	}
	return fieldError(path, "unknown field; the fields are %s", strings.Join(names, ", "))
}

// fieldPath is name within path: update.kind.
func fieldPath(path, name string) string {
	if path == "" || name == "" {
		return path + name
	}
	return path + "." + name
}

// noBody accepts an empty body or an empty object, for a request whose
// body would be ignored; a field in it is refused with why.
func (s *Server) noBody(w http.ResponseWriter, r *http.Request, why string) error {
	err := s.decode(w, r, &struct{}{}, true)
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusBadRequest && he.body.Field != "body" {
		return fieldError(he.body.Field, "%s", why)
	}
	return err
}

func tooLarge(limit int64) *httpError {
	return errorf(http.StatusRequestEntityTooLarge, "too_large", "request body is larger than %d bytes", limit)
}

func decodeError(err error, limit int64) error {
	var (
		maxErr    *http.MaxBytesError
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.As(err, &maxErr):
		return tooLarge(limit)
	case err == io.EOF:
		return fieldError("body", "expected a JSON object, got an empty body")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fieldError(typeErr.Field, "must be %s, got a JSON %s", inJSON(typeErr.Type), typeErr.Value)
	case errors.As(err, &typeErr):
		return fieldError("body", "must be a JSON object, got a JSON %s", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fieldError("body", "invalid JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldError("body", "invalid JSON: it ends early")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return fieldError(name, "unknown field")
	}
	return fieldError("body", "invalid JSON: %v", err)
}

// inJSON says what a value of Go type t is written as in a request body.
func inJSON(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[config.Duration]():
		return `a duration such as "30s" or "72h"`
	case reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()):
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}
