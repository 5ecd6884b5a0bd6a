package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/creditd/creditd/jobs"
)

// usageEvent is one usage event as POST /v1/orgs/{org}/usage takes it: the
// fields of jobs.UsagePayload that a caller sets. The org comes from the
// path; org_id may be repeated in the body (so a jobs payload can be sent as
// it is) but must then name the same org. Amounts are decimal strings.
type usageEvent struct {
	OrgID      *string         `json:"org_id"`
	EventID    string          `json:"event_id"`
	Amount     *string         `json:"amount"`
	Feature    string          `json:"feature"`
	Units      *int64          `json:"units"`
	Runs       *int64          `json:"runs"`
	Team       string          `json:"team"`
	User       string          `json:"user"`
	OccurredAt *string         `json:"occurred_at"`
	Metadata   json.RawMessage `json:"metadata"`
}

// usageAccepted is the 202 answer: how many events were enqueued.
type usageAccepted struct {
	Enqueued int `json:"enqueued"`
}

// postUsage enqueues one event ({"event_id", ...}) as a usage:record task,
// or a batch ({"events": [...]}, at most jobs.MaxBatchEvents) as one
// usage:batch task. The whole request is checked first, as the worker will
// check it; a request with any fault enqueues nothing.
func (s *Server) postUsage(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var envelope map[string]json.RawMessage
	if err := json.Unmarshal(data, &envelope); err != nil {
		return jsonError(err, "")
	}
	if raw, isBatch := envelope["events"]; isBatch {
		return s.postUsageBatch(w, r, org, data, envelope, raw)
	}
	var ev usageEvent
	if err := decodeStrict(data, &ev, ""); err != nil {
		return err
	}
	p, err := s.usagePayload(org, ev, "")
	if err != nil {
		return err
	}
	if err := s.requireOrg(r, org); err != nil {
		return err
	}
	if err := s.cfg.Jobs.EnqueueUsage(r.Context(), p); err != nil {
		return enqueueError(err)
	}
	writeJSON(w, http.StatusAccepted, usageAccepted{Enqueued: 1})
	return nil
}

func (s *Server) postUsageBatch(w http.ResponseWriter, r *http.Request, org string, data []byte, envelope map[string]json.RawMessage, raw json.RawMessage) error {
	if len(envelope) > 1 {
		// A batch is {"events": [...]} and nothing else.
		var others []string
		for k := range envelope {
			if k != "events" {
				others = append(others, k)
			}
		}
		slices.Sort(others)
		return badRequest(others[0], `unknown field (a batch takes only "events")`)
	}
	var batch struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := decodeStrict(data, &batch, ""); err != nil {
		return err
	}
	switch n := len(batch.Events); {
	case string(raw) == "null" || n == 0:
		return badRequest("events", "at least one event is required")
	case n > jobs.MaxBatchEvents:
		return badRequest("events", fmt.Sprintf("%d events; at most %d per request", n, jobs.MaxBatchEvents))
	}
	payloads := make([]jobs.UsagePayload, len(batch.Events))
	for i, rawEv := range batch.Events {
		prefix := fmt.Sprintf("events[%d].", i)
		var ev usageEvent
		if err := decodeStrict(rawEv, &ev, prefix); err != nil {
			return err
		}
		p, err := s.usagePayload(org, ev, prefix)
		if err != nil {
			return err
		}
		payloads[i] = p
	}
	if err := s.requireOrg(r, org); err != nil {
		return err
	}
	// RecordUsageBatch checks every event again (and repeated event ids)
	// and enqueues one task, or nothing.
	if err := s.cfg.Jobs.RecordUsageBatch(r.Context(), payloads); err != nil {
		return enqueueError(err)
	}
	writeJSON(w, http.StatusAccepted, usageAccepted{Enqueued: len(payloads)})
	return nil
}

// usagePayload turns a decoded event into the task payload and checks it
// as the worker will, plus what the worker would only find out later (an
// unknown feature). Errors name the field with prefix.
func (s *Server) usagePayload(org string, ev usageEvent, prefix string) (jobs.UsagePayload, error) {
	if ev.OrgID != nil && *ev.OrgID != org {
		return jobs.UsagePayload{}, badRequest(prefix+"org_id", fmt.Sprintf("%q is not the org of the path (%q); leave it out", *ev.OrgID, org))
	}
	p := jobs.UsagePayload{Version: jobs.UsagePayloadVersion, OrgID: org, EventID: ev.EventID, Amount: ev.Amount,
		Feature: ev.Feature, Team: ev.Team, User: ev.User}
	// Zero means "not given" in the payload, so an explicit zero is refused.
	if ev.Units != nil {
		if *ev.Units <= 0 {
			return jobs.UsagePayload{}, badRequest(prefix+"units", "must be positive")
		}
		p.Units = *ev.Units
	}
	if ev.Runs != nil {
		if *ev.Runs <= 0 {
			return jobs.UsagePayload{}, badRequest(prefix+"runs", "must be positive")
		}
		p.Runs = *ev.Runs
	}
	if ev.OccurredAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *ev.OccurredAt)
		if err != nil {
			return jobs.UsagePayload{}, badRequest(prefix+"occurred_at", fmt.Sprintf("%q is not an RFC 3339 time", *ev.OccurredAt))
		}
		t = t.UTC()
		p.OccurredAt = &t
	}
	if len(ev.Metadata) > 0 && string(ev.Metadata) != "null" {
		p.Metadata = ev.Metadata
	}
	if _, err := p.Event(); err != nil {
		var pe *jobs.PayloadError
		if errors.As(err, &pe) {
			return jobs.UsagePayload{}, badRequest(prefix+pe.Field, pe.Reason)
		}
		return jobs.UsagePayload{}, err
	}
	if ev.Amount == nil && ev.Runs == nil {
		if _, ok := s.cfg.Ledger.Catalog().FeatureRate(ev.Feature); !ok {
			return jobs.UsagePayload{}, badRequest(prefix+"feature", fmt.Sprintf("unknown feature %q", ev.Feature))
		}
	}
	return p, nil
}

// requireOrg answers 404 for an org that does not exist, so that its usage
// is refused now rather than archived by the worker later.
func (s *Server) requireOrg(r *http.Request, org string) error {
	_, err := s.cfg.Ledger.GetOrg(r.Context(), s.cfg.DB, org)
	return err
}

// enqueueError classifies what the jobs client returned: a payload it
// refuses is the caller's fault (a task payload over its size limit is 413),
// anything else is Redis trouble.
func enqueueError(err error) error {
	var pe *jobs.PayloadError
	if errors.As(err, &pe) {
		if pe.Field == "payload" {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "body",
				msg: "the events are too large for one task (" + pe.Reason + "); send fewer per request"}
		}
		return badRequest(pe.Field, pe.Reason)
	}
	return unavailable("queue", err)
}
