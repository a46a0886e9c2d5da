package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts and times requests by route pattern, not by path, so
// rollout IDs do not become label values.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnsroll_api_requests_total",
			Help: "API requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dnsroll_api_request_duration_seconds",
			Help:    "API request latency by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return afterServing(next, func(r *http.Request, ww middleware.WrapResponseWriter, took time.Duration) {
		route, method := routePattern(r), methodLabel(r.Method)
		m.requests.WithLabelValues(method, route, strconv.Itoa(ww.Status())).Inc()
		m.duration.WithLabelValues(method, route).Observe(took.Seconds())
	})
}

// methodLabel is method if it is one of HTTP's, else "other": any client
// may send any method, and a label value per method would grow the
// metrics without limit.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// afterServing wraps next, then calls done with the response's status and
// size (ww) and the time next took, once next has served r.
func afterServing(next http.Handler, done func(r *http.Request, ww middleware.WrapResponseWriter, took time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		done(r, ww, time.Since(start))
	})
}

// routePattern is the matched route ("/rollouts/{id}"), known once the
// router has run; "unmatched" for 404s and 405s.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}
