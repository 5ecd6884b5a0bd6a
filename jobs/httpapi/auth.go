package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/creditd/creditd/ledger"
)

// principal is who a request's token says it is: the operator, or an org
// token with its org and role.
type principal struct {
	operator bool
	token    ledger.Token
}

func (p principal) String() string {
	if p.operator {
		return "operator"
	}
	return "token:" + p.token.ID
}

// errNoCredentials: no token, or one that is not the operator's and not a
// live org token. Answered 401.
var errNoCredentials = errors.New("missing or invalid token")

// authenticate resolves a token. The operator token is compared in constant
// time (as SHA-256 digests, so its length does not leak either); org tokens
// are looked up by their hash. An empty token is never the operator, even
// when no operator token is configured.
func (s *Server) authenticate(r *http.Request, token string) (principal, error) {
	if token == "" {
		return principal{}, errNoCredentials
	}
	if s.operatorHash != nil {
		h := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(h[:], s.operatorHash[:]) == 1 {
			return principal{operator: true}, nil
		}
	}
	if !strings.HasPrefix(token, ledger.TokenPrefix) {
		return principal{}, errNoCredentials
	}
	tok, err := s.cfg.Ledger.LookupToken(r.Context(), s.cfg.DB, token)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return principal{}, errNoCredentials
	case err != nil:
		return principal{}, unavailable("token store", err)
	}
	return principal{token: tok}, nil
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// orgHandler serves a route under /v1/orgs/{org}/ once the caller may.
type orgHandler func(w http.ResponseWriter, r *http.Request, org string) error

// handleOrg registers an org route that needs role need: the operator token
// reaches every org; an org token only its own org (403 for another), and
// only when its role allows need (403 for a member on an admin route).
// Missing or invalid tokens get 401. Errors h returns are answered as JSON.
func (s *Server) handleOrg(pattern string, need ledger.Role, h orgHandler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		token, _ := bearerToken(r)
		p, err := s.authenticate(r, token)
		if errors.Is(err, errNoCredentials) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="creditd"`)
			s.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: "unauthorized",
				msg: "a valid token is required: Authorization: Bearer TOKEN"})
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		infoOf(r).auth = p.String()
		org := r.PathValue("org")
		if err := authorize(p, org, need); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := h(w, r, org); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authorize decides whether p may act on org with role need.
func authorize(p principal, org string, need ledger.Role) error {
	switch {
	case p.operator:
		return nil
	case p.token.OrgID != org:
		return &apiError{status: http.StatusForbidden, code: "forbidden", msg: "this token belongs to another org"}
	case !p.token.Role.Allows(need):
		return &apiError{status: http.StatusForbidden, code: "forbidden",
			msg: "this needs a token with role " + string(need) + "; this token's role is " + string(p.token.Role)}
	}
	return nil
}

// operatorOnly guards the operators' UI: the operator token as a bearer
// token or, for browsers, as the password of HTTP basic auth (any user
// name). Without valid credentials the answer is 401 with a Basic challenge,
// so a browser asks for them; org tokens get 403.
func (s *Server) operatorOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			_, token, _ = r.BasicAuth()
		}
		p, err := s.authenticate(r, token)
		switch {
		case errors.Is(err, errNoCredentials):
			w.Header().Set("WWW-Authenticate", `Basic realm="creditd"`)
			s.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: "unauthorized",
				msg: "the operator token is required (as a bearer token, or as the basic auth password)"})
			return
		case err != nil:
			s.writeError(w, r, err)
			return
		}
		infoOf(r).auth = p.String()
		if !p.operator {
			s.writeError(w, r, &apiError{status: http.StatusForbidden, code: "forbidden",
				msg: "the operators' UI needs the operator token, not an org token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
