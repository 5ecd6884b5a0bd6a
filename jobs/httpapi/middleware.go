package httpapi

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// requestInfo collects, while a request is served, what its log line says
// beyond the request itself: who it was.
type requestInfo struct {
	auth string // "operator" or "token:ID"; empty when none was accepted
}

type requestInfoKey struct{}

func infoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes flushes on (asynqmon does not need it; streaming would).
func (r *statusRecorder) Flush() {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// routeLabel is the route pattern the request matched, which keeps the
// metric labels and log lines few and free of org ids and tokens.
func routeLabel(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.Pattern
}

// methodLabel keeps the method label to a fixed set whatever clients send.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// observe logs and counts one answered request. The log line never holds
// the Authorization header, the query string or the body.
func (s *Server) observe(r *http.Request, rec *statusRecorder, info *requestInfo, took time.Duration) {
	status := rec.status
	if !rec.wroteHeader {
		status = http.StatusOK // a handler that wrote nothing answered 200
	}
	route, method := routeLabel(r), methodLabel(r.Method)
	s.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.latency.WithLabelValues(route, method).Observe(took.Seconds())
	attrs := []slog.Attr{
		slog.String("method", method), slog.String("route", route), slog.Int("status", status),
		slog.Duration("duration", took), slog.Int64("bytes", rec.bytes),
	}
	if org := r.PathValue("org"); org != "" {
		attrs = append(attrs, slog.String("org", org))
	}
	if info.auth != "" {
		attrs = append(attrs, slog.String("auth", info.auth))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
}

func stack() string { return string(debug.Stack()) }
