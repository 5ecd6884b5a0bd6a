package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Role is what an org token may do in its org.
type Role string

// Roles of org tokens. Members record usage, hold credits and read; admins
// also change billing (buy credits, save cards, auto-recharge, alerts and
// limits). Seed 004: "Members can run rules but cannot change billing".
const (
	RoleMember Role = "member"
	RoleAdmin  Role = "admin"
)

// Allows reports whether a token of role r may do what needs role need:
// admins may do everything members may.
func (r Role) Allows(need Role) bool {
	switch need {
	case RoleMember:
		return r == RoleMember || r == RoleAdmin
	case RoleAdmin:
		return r == RoleAdmin
	}
	return false
}

func validRole(r Role) error {
	switch r {
	case RoleMember, RoleAdmin:
		return nil
	case "":
		return invalid("role", "required")
	}
	return invalid("role", "must be member or admin, not %q", string(r))
}

// Token is an org's API token as stored: never its secret.
type Token struct {
	OrgID     string     `json:"org"`
	ID        string     `json:"id"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Org tokens read "cdt_" + a 12-hex-digit id + "_" + 52 base32 characters
// (256 random bits). The id is not secret: it names the token in logs and
// lists. Only a SHA-256 of the whole token is stored.
const (
	TokenPrefix   = "cdt_"
	tokenIDBytes  = 6
	tokenSecBytes = 32
)

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// tokenLen is the length of every token this code makes.
var tokenLen = len(TokenPrefix) + 2*tokenIDBytes + 1 + tokenEncoding.EncodedLen(tokenSecBytes)

func hashToken(plaintext string) []byte {
	h := sha256.Sum256([]byte(plaintext))
	return h[:]
}

// parseToken checks a token's shape and returns its id; it reads nothing.
func parseToken(plaintext string) (id string, ok bool) {
	if len(plaintext) != tokenLen || !strings.HasPrefix(plaintext, TokenPrefix) {
		return "", false
	}
	rest := plaintext[len(TokenPrefix):]
	id, secret, found := strings.Cut(rest, "_")
	if !found || len(id) != 2*tokenIDBytes {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", false
	}
	if _, err := tokenEncoding.DecodeString(strings.ToUpper(secret)); err != nil || strings.ToLower(secret) != secret {
		return "", false
	}
	return id, true
}

func newTokenPlaintext() (id, plaintext string, err error) {
	idBytes := make([]byte, tokenIDBytes)
	secret := make([]byte, tokenSecBytes)
	if _, err := rand.Read(idBytes); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	id = hex.EncodeToString(idBytes)
	return id, TokenPrefix + id + "_" + strings.ToLower(tokenEncoding.EncodeToString(secret)), nil
}

const insertTokenSQL = `
INSERT INTO api_tokens (org_id, token_id, secret_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)`

// CreateToken makes a new API token for the org with the given role and
// returns it in plaintext, the only time it is ever available: only its
// SHA-256 is stored. Errors: a *ValidationError naming "org" or "role",
// ErrNotFound when the org does not exist.
func (l *Ledger) CreateToken(ctx context.Context, tx pgx.Tx, orgID string, role Role) (string, Token, error) {
	if err := validOrgID(orgID); err != nil {
		return "", Token{}, err
	}
	if err := validRole(role); err != nil {
		return "", Token{}, err
	}
	if _, err := l.GetOrg(ctx, tx, orgID); err != nil {
		return "", Token{}, err
	}
	id, plaintext, err := newTokenPlaintext()
	if err != nil {
		return "", Token{}, err
	}
	tok := Token{OrgID: orgID, ID: id, Role: role, CreatedAt: l.now()}
	if _, err := tx.Exec(ctx, insertTokenSQL, orgID, id, hashToken(plaintext), string(role), tok.CreatedAt); err != nil {
		return "", Token{}, mapError(fmt.Errorf("create token for org %s: %w", orgID, err))
	}
	return plaintext, tok, nil
}

const lookupTokenSQL = `
SELECT org_id, token_id, role, created_at FROM api_tokens WHERE secret_hash = $1 AND revoked_at IS NULL`

// LookupToken finds the live token whose plaintext is given. It is
// ErrNotFound for anything else: a malformed, unknown or revoked token. The
// database compares SHA-256 hashes, so the time it takes says nothing about
// how much of a guess was right.
func (l *Ledger) LookupToken(ctx context.Context, db DBTX, plaintext string) (Token, error) {
	id, ok := parseToken(plaintext)
	if !ok {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	var tok Token
	var role string
	err := db.QueryRow(ctx, lookupTokenSQL, hashToken(plaintext)).Scan(&tok.OrgID, &tok.ID, &role, &tok.CreatedAt)
	if err != nil {
		return Token{}, fmt.Errorf("token %s: %w", id, mapError(err))
	}
	tok.Role, tok.CreatedAt = Role(role), tok.CreatedAt.UTC()
	return tok, nil
}

const revokeTokenSQL = `
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, greatest(created_at, $3)) WHERE org_id = $1 AND token_id = $2
RETURNING role, created_at, revoked_at`

// RevokeToken stops the org's token with the given id from working, at once
// and for good. Revoking it again changes nothing. ErrNotFound when the org
// has no such token.
func (l *Ledger) RevokeToken(ctx context.Context, tx pgx.Tx, orgID, tokenID string) (Token, error) {
	if err := validOrgID(orgID); err != nil {
		return Token{}, err
	}
	if err := validKey("token_id", tokenID); err != nil {
		return Token{}, err
	}
	tok := Token{OrgID: orgID, ID: tokenID}
	var role string
	var revoked time.Time
	err := tx.QueryRow(ctx, revokeTokenSQL, orgID, tokenID, l.now()).Scan(&role, &tok.CreatedAt, &revoked)
	if err != nil {
		return Token{}, fmt.Errorf("token %s of org %s: %w", tokenID, orgID, mapError(err))
	}
	revoked = revoked.UTC()
	tok.Role, tok.CreatedAt, tok.RevokedAt = Role(role), tok.CreatedAt.UTC(), &revoked
	return tok, nil
}
