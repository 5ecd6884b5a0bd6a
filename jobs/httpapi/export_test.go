package httpapi

import (
	"net/http"

	"github.com/creditd/creditd/ledger"
)

// HandleOrgForTest registers an extra org route needing role need, the way
// the admin routes of issues 5 and 6 will register.
func (s *Server) HandleOrgForTest(pattern string, need ledger.Role, h http.HandlerFunc) {
	s.handleOrg(pattern, need, func(w http.ResponseWriter, r *http.Request, _ string) error {
		h(w, r)
		return nil
	})
}

// FormatPayload is the payload formatter asynqmon shows payloads through.
var FormatPayload = formatPayload
