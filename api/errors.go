package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dnsroll/dnsroll"
)

// ErrorBody is every error response.
type ErrorBody struct {
	// Code is dnsroll's error code (invalid, not_found, conflict, internal)
	// or an HTTP-level one (unauthorized, too_large, method_not_allowed).
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
	if !errors.As(err, &he) {
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
	if r.ContentLength > s.cfg.MaxBody {
		return tooLarge(s.cfg.MaxBody)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == io.EOF && emptyOK {
		return nil
	}
	if err == nil {
		// Only whitespace may follow the object. Reading to the end also
		// makes an oversized tail a 413.
		_, err = dec.Token()
		var maxErr *http.MaxBytesError
		switch {
		case err == io.EOF:
			return nil
		case errors.As(err, &maxErr):
			return tooLarge(s.cfg.MaxBody)
		}
		return fieldError("body", "unexpected data after the JSON object")
	}
	return decodeError(err, s.cfg.MaxBody)
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
		return fieldError(typeErr.Field, "must be a %s, got a JSON %s", typeErr.Type.Kind(), typeErr.Value)
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
