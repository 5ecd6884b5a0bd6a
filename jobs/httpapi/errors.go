package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// errorBody is every error response: a message for people, the field at
// fault when there is one ("events[2].amount"), and a stable code for
// programs.
type errorBody struct {
	Error  string `json:"error"`
	Field  string `json:"field"` // "" when no one field is at fault
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
}

const statusClientClosed = 499

// apiError is an error with its HTTP answer.
type apiError struct {
	status int
	code   string
	msg    string
	field  string
	detail string
	err    error // the cause, for the log; never shown
}

func (e *apiError) Error() string {
	if e.field != "" {
		return e.field + ": " + e.msg
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

func badRequest(field, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid", field: field, msg: msg}
}

// unavailable is a dependency (Redis, Postgres) failing: the caller may
// retry the same request later.
func unavailable(what string, err error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", msg: what + " unavailable, retry later", err: err}
}

// classify maps an error to its answer: the ledger's and the task
// contract's errors to 4xx naming the field, anything else to a 500.
func classify(err error) *apiError {
	var (
		ae *apiError
		ve *ledger.ValidationError
		pe *jobs.PayloadError
		mb *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mb):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "body",
			msg: "request body larger than the limit", err: err}
	case errors.As(err, &ve):
		return &apiError{status: http.StatusBadRequest, code: "invalid", field: ve.Field, msg: ve.Reason}
	case errors.As(err, &pe):
		return &apiError{status: http.StatusBadRequest, code: "invalid", field: pe.Field, msg: pe.Reason}
	case errors.Is(err, ledger.ErrInsufficientCredits):
		return &apiError{status: http.StatusConflict, code: "insufficient_credits", msg: "insufficient credits", detail: err.Error()}
	case errors.Is(err, ledger.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: "not_found", msg: err.Error()}
	case errors.Is(err, ledger.ErrConflict):
		return &apiError{status: http.StatusConflict, code: "conflict", msg: err.Error()}
	case errors.Is(err, ledger.ErrRetry), errors.Is(err, context.DeadlineExceeded), isConnError(err):
		return unavailable("database", err)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer. 499 (nginx's
		// "client closed request") keeps it apart from real 5xx in metrics.
		return &apiError{status: statusClientClosed, code: "canceled", msg: "request canceled", err: err}
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error", err: err}
}

// writeError answers with err as JSON. Server-side failures are logged
// here, once, with their cause; the client sees only a generic message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(err)
	if e.status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", routeLabel(r),
			"status", e.status, "err", e.err)
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.status, errorBody{Error: e.msg, Field: e.field, Code: e.code, Detail: e.detail})
}

// isConnError reports a failure to reach the database (refused, reset,
// timed out), which a retry may get past, as opposed to a bug.
func isConnError(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a write error means the client is gone
}
