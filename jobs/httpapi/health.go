package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// readyCheck is one dependency /readyz pings.
type readyCheck struct {
	name string
	ping func(ctx context.Context) error
}

type healthBody struct {
	Status string            `json:"status"`
	Error  string            `json:"error,omitempty"`
	Checks map[string]string `json:"checks,omitempty"`
}

// healthz says the process is up and serving; it checks nothing else, so a
// database outage does not get the process restarted.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthBody{Status: "ok"})
}

// readyz pings Postgres and Redis at once, each within ReadyTimeout: 200
// when both answer, else 503 naming what is down. The reasons are logged,
// not shown: the endpoint needs no token, and they hold addresses.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	errs := make([]error, len(s.readyChecks))
	var wg sync.WaitGroup
	for i, c := range s.readyChecks {
		wg.Go(func() { errs[i] = c.ping(ctx) })
	}
	wg.Wait()
	body := healthBody{Status: "ready", Checks: map[string]string{}}
	var down []string
	for i, c := range s.readyChecks {
		if errs[i] != nil {
			body.Checks[c.name] = "down"
			down = append(down, c.name)
			s.log.WarnContext(r.Context(), "not ready", "check", c.name, "err", errs[i])
			continue
		}
		body.Checks[c.name] = "ok"
	}
	if len(down) > 0 {
		body.Status = "not ready"
		body.Error = "unreachable: " + strings.Join(down, ", ")
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}
