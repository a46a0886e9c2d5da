package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// ctxKey is unexported so no other package can read or clobber our values.
type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDHeader carries the request ID both ways.
const RequestIDHeader = "X-Request-ID"

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID takes the caller's X-Request-ID when it is sane (so CI logs and
// ours line up) and makes one up otherwise. It echoes it in the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !requestIDRE.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// RequestID returns the request's ID, "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// logRequests logs one JSON line per request. It logs the method, path and
// outcome, never headers, so no token can reach the log.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return afterServing(next, func(r *http.Request, ww middleware.WrapResponseWriter, took time.Duration) {
		s.log.Info("request", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path,
			"route", routePattern(r), "status", ww.Status(), "bytes", ww.BytesWritten(),
			"duration_ms", float64(took.Microseconds())/1000, "remote", r.RemoteAddr)
	})
}

// recoverPanics turns a handler panic into a logged 500 rather than a
// dropped connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "request_id", RequestID(r.Context()), "panic", v)
				s.fail(w, r, errorf(http.StatusInternalServerError, "internal", "internal error; the API's log has the details under this request_id"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// bearerAuth requires "Authorization: Bearer <token>". Both sides are hashed
// before the constant-time comparison, so neither the token's bytes nor its
// length leak through timing. An empty token disables the check.
func bearerAuth(token string, fail func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				if err := fromThisMachine(r); err != nil {
					fail(w, r, err)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				fail(w, r, errorf(http.StatusUnauthorized, "unauthorized", "missing bearer token: send Authorization: Bearer $DNSROLL_API_TOKEN"))
				return
			}
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				fail(w, r, errorf(http.StatusUnauthorized, "unauthorized", "wrong bearer token"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// fromThisMachine refuses, for an API without a token (--insecure-no-auth,
// which listens on loopback), what a web page in the operator's browser
// could send it: a request with an Origin header (a cross-site form or
// fetch; no dnsroll client sends one) or for a host name other than
// localhost (a page whose name was rebound to 127.0.0.1). A token stops
// both, since a browser sends none cross-site.
func fromThisMachine(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		return errorf(http.StatusForbidden, "forbidden", "a request from a web page (Origin %q) is refused by an API without a token; set DNSROLL_API_TOKEN", o)
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && !strings.EqualFold(host, "localhost") {
		return errorf(http.StatusForbidden, "forbidden", "an API without a token answers only requests for its address or localhost, not %q; set DNSROLL_API_TOKEN to serve a host name", r.Host)
	}
	return nil
}

// keyOnlyOnStarts refuses an Idempotency-Key on any POST but a rollout's
// start, the only one that honours it (Server.start): a retry, cleanup,
// plan or load balancer start sent again with its key, after a lost
// answer, would start a second run, not get the first back.
func keyOnlyOnStarts(fail func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && routePattern(r) != Rollouts.Path && len(r.Header.Values("Idempotency-Key")) > 0 {
				fail(w, r, fieldError("Idempotency-Key", "is honoured only by POST %s, a rollout's start: %s %s would not replay its earlier run when sent again, so send it without the key",
					Rollouts.Path, r.Method, routePattern(r)))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
