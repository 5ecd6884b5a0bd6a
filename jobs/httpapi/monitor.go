package httpapi

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/creditd/creditd/jobs"
)

// maxShown bounds what the UI shows of one payload or result.
const maxShown = 1024

// usageShown is what the UI shows of a usage event: who, what and how much.
// Metadata is the application's own and may hold anything, so only its size
// is shown.
type usageShown struct {
	V          int     `json:"v"`
	OrgID      string  `json:"org_id"`
	EventID    string  `json:"event_id"`
	Amount     *string `json:"amount,omitempty"`
	Feature    string  `json:"feature,omitempty"`
	Units      int64   `json:"units,omitempty"`
	Runs       int64   `json:"runs,omitempty"`
	Team       string  `json:"team,omitempty"`
	User       string  `json:"user,omitempty"`
	OccurredAt string  `json:"occurred_at,omitempty"`
	Metadata   string  `json:"metadata,omitempty"`
}

func showUsage(p jobs.UsagePayload) usageShown {
	s := usageShown{V: p.Version, OrgID: p.OrgID, EventID: p.EventID, Amount: p.Amount, Feature: p.Feature,
		Units: p.Units, Runs: p.Runs, Team: p.Team, User: p.User}
	if p.OccurredAt != nil {
		s.OccurredAt = p.OccurredAt.Format("2006-01-02T15:04:05.999999Z07:00")
	}
	if len(p.Metadata) > 0 {
		s.Metadata = fmt.Sprintf("(%d bytes, not shown)", len(p.Metadata))
	}
	return s
}

// batchShown summarizes a usage batch: its size, its orgs and the first
// few events.
type batchShown struct {
	V        int          `json:"v"`
	Count    int          `json:"events"`
	OrgCount int          `json:"org_count"`
	Orgs     []string     `json:"orgs"` // the first five
	First    []usageShown `json:"first"`
}

// formatPayload is asynqmon's PayloadFormatter: the UI (and its API) show
// payloads through it, never raw. Known task types are shown without
// metadata and shortened; payloads of other types (payments and whatever
// comes later may carry customer or payment ids) only by size.
func formatPayload(taskType string, payload []byte) string {
	var v any
	switch taskType {
	case jobs.TypeUsage:
		var p jobs.UsagePayload
		if json.Unmarshal(payload, &p) != nil {
			return unreadable(taskType, payload)
		}
		v = showUsage(p)
	case jobs.TypeUsageBatch:
		var p jobs.UsageBatchPayload
		if json.Unmarshal(payload, &p) != nil {
			return unreadable(taskType, payload)
		}
		b := batchShown{V: p.Version, Count: len(p.Events), Orgs: []string{}}
		seen := make(map[string]bool)
		for i, e := range p.Events {
			if i < 3 {
				b.First = append(b.First, showUsage(e))
			}
			if !seen[e.OrgID] {
				seen[e.OrgID] = true
				if len(b.Orgs) < 5 {
					b.Orgs = append(b.Orgs, e.OrgID)
				}
			}
		}
		b.OrgCount = len(seen)
		v = b
	case jobs.TypeHoldReserve, jobs.TypeHoldCapture, jobs.TypeHoldRelease:
		var p jobs.HoldPayload // ids, an amount and a TTL: nothing private
		if json.Unmarshal(payload, &p) != nil {
			return unreadable(taskType, payload)
		}
		v = p
	default:
		return fmt.Sprintf("(%d bytes; payloads of %s tasks are not shown)", len(payload), taskType)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return unreadable(taskType, payload)
	}
	return shorten(string(out))
}

func unreadable(taskType string, payload []byte) string {
	return fmt.Sprintf("(%d bytes; not a valid %s payload)", len(payload), taskType)
}

// formatResult is asynqmon's ResultFormatter: results are shown shortened.
func formatResult(_ string, result []byte) string {
	if !utf8.Valid(result) {
		return fmt.Sprintf("(%d bytes, not text)", len(result))
	}
	return shorten(string(result))
}

func shorten(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes in all)", len(s))
}
