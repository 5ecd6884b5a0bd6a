package stripefake

import (
	"fmt"
	"strings"
)

// Fault is a failure the fake injects into a request; see the package
// documentation for the fault model.
type Fault int

const (
	// FaultNone lets a request through untouched.
	FaultNone Fault = iota
	// FaultDecline makes the request's charge decline with
	// card_declined/generic_decline.
	FaultDecline
	// FaultAuthRequired makes the request's charge need 3D Secure:
	// authentication_required off-session, requires_action on-session.
	FaultAuthRequired
	// Fault500 answers 500 api_error without running the request.
	Fault500
	// Fault429 answers 429 rate_limit without running the request.
	Fault429
	// FaultTimeout holds the request without running it until the client
	// gives up (or 30 s pass), then drops the connection.
	FaultTimeout
	// FaultDropResponse runs the request, stores its idempotent result, and
	// drops the connection without answering.
	FaultDropResponse
	// FaultHoldResponse runs the request and stores its idempotent result,
	// then holds the answer until the client gives up or goes away (or 30 s
	// pass) and drops the connection: Stripe succeeded while the caller
	// waited, and the caller died waiting (a worker killed mid-charge).
	FaultHoldResponse
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "FaultNone"
	case FaultDecline:
		return "FaultDecline"
	case FaultAuthRequired:
		return "FaultAuthRequired"
	case Fault500:
		return "Fault500"
	case Fault429:
		return "Fault429"
	case FaultTimeout:
		return "FaultTimeout"
	case FaultDropResponse:
		return "FaultDropResponse"
	case FaultHoldResponse:
		return "FaultHoldResponse"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// chargeOnly reports whether the fault waits for a request that charges a
// card instead of applying to whichever request comes next.
func (f Fault) chargeOnly() bool {
	return f == FaultDecline || f == FaultAuthRequired
}

// faultRule is one FailNext call: left more requests under prefix get fault.
type faultRule struct {
	prefix string
	left   int
	fault  Fault
}

// FailNext queues fault f for the next n requests whose path starts with
// prefix (for example "/v1/payment_intents"). Rules are taken oldest first,
// at most one per request; FaultDecline and FaultAuthRequired are taken only
// by requests that charge a card. A misuse (n < 1, a prefix not starting with
// "/", an unknown fault) fails the test.
func (s *Server) FailNext(prefix string, n int, f Fault) {
	if n < 1 || !strings.HasPrefix(prefix, "/") || f < FaultNone || f > FaultHoldResponse {
		s.errorf("stripefake: FailNext(%q, %d, %v): need a path starting with / and n >= 1", prefix, n, f)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultRule{prefix: prefix, left: n, fault: f})
}

// nextFault returns the oldest rule with requests left that matches path.
func (s *Server) nextFault(path string) *faultRule {
	for _, r := range s.faults {
		if r.left > 0 && strings.HasPrefix(path, r.prefix) {
			return r
		}
	}
	return nil
}

// consumeFault uses up one request of rule, dropping the rule when done.
func (s *Server) consumeFault(rule *faultRule) {
	rule.left--
	if rule.left > 0 {
		return
	}
	for i, r := range s.faults {
		if r == rule {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return
		}
	}
}
