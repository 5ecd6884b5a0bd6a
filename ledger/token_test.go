package ledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

func (f *fixture) createToken(org string, role ledger.Role) (string, ledger.Token) {
	f.t.Helper()
	var plaintext string
	var tok ledger.Token
	f.tx(func(tx pgx.Tx) (err error) {
		plaintext, tok, err = f.l.CreateToken(f.ctx, tx, org, role)
		return err
	})
	return plaintext, tok
}

func TestToken_CreateAndLookup(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	acme := f.org("acme", nil)
	other := f.org("other", nil)

	member, mtok := f.createToken(acme, ledger.RoleMember)
	admin, atok := f.createToken(acme, ledger.RoleAdmin)
	otherMember, _ := f.createToken(other, ledger.RoleMember)
	if !strings.HasPrefix(member, ledger.TokenPrefix) || member == admin || mtok.ID == atok.ID {
		t.Fatalf("tokens %q %q (ids %s %s)", member, admin, mtok.ID, atok.ID)
	}
	if !strings.Contains(member, "_"+mtok.ID+"_") {
		t.Errorf("token %q does not carry its id %s", member, mtok.ID)
	}
	if !mtok.CreatedAt.Equal(f.clock.Now()) || mtok.RevokedAt != nil {
		t.Errorf("token = %+v", mtok)
	}

	for _, tc := range []struct {
		name, plaintext, org string
		role                 ledger.Role
	}{
		{"member", member, acme, ledger.RoleMember},
		{"admin", admin, acme, ledger.RoleAdmin},
		{"member of another org", otherMember, other, ledger.RoleMember},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.l.LookupToken(f.ctx, f.pool, tc.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if got.OrgID != tc.org || got.Role != tc.role || got.ID == "" {
				t.Fatalf("lookup = %+v, want org %s role %s", got, tc.org, tc.role)
			}
		})
	}

	// The secret is never stored: only its SHA-256.
	secret := member[strings.LastIndex(member, "_")+1:]
	var hashed bool
	var n int
	if err := f.pool.QueryRow(f.ctx, `SELECT secret_hash = sha256(convert_to($1, 'UTF8')) FROM api_tokens WHERE token_id = $2`,
		member, mtok.ID).Scan(&hashed); err != nil || !hashed {
		t.Fatalf("stored hash is not SHA-256 of the token (%v)", err)
	}
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM api_tokens t WHERE row_to_json(t)::text ILIKE '%' || $1 || '%'`,
		secret).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the token's secret is stored (%d rows, %v)", n, err)
	}
	f.verify()
}

func TestToken_LookupRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	acme := f.org("acme", nil)
	good, tok := f.createToken(acme, ledger.RoleMember)
	revoked, rtok := f.createToken(acme, ledger.RoleAdmin)
	var res ledger.Token
	f.tx(func(tx pgx.Tx) (err error) {
		res, err = f.l.RevokeToken(f.ctx, tx, acme, rtok.ID)
		return err
	})
	if res.RevokedAt == nil || res.Role != ledger.RoleAdmin {
		t.Fatalf("revoke = %+v", res)
	}
	first := *res.RevokedAt
	f.clock.Advance(time.Hour)
	f.tx(func(tx pgx.Tx) (err error) { // revoking again changes nothing
		res, err = f.l.RevokeToken(f.ctx, tx, acme, rtok.ID)
		return err
	})
	if !res.RevokedAt.Equal(first) {
		t.Errorf("second revoke moved revoked_at %s -> %s", first, res.RevokedAt)
	}

	flip := []byte(good)
	if flip[len(flip)-1] == 'a' {
		flip[len(flip)-1] = 'b'
	} else {
		flip[len(flip)-1] = 'a'
	}
	for _, tc := range []struct{ name, plaintext string }{
		{"empty", ""},
		{"revoked", revoked},
		{"one character changed", string(flip)},
		{"truncated", good[:len(good)-1]},
		{"extended", good + "a"},
		{"upper case", strings.ToUpper(good)},
		{"no prefix", strings.TrimPrefix(good, ledger.TokenPrefix)},
		{"the id alone", ledger.TokenPrefix + tok.ID},
		{"not a token", "Bearer " + good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := f.l.LookupToken(f.ctx, f.pool, tc.plaintext); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("lookup = %+v, %v; want ErrNotFound", got, err)
			}
		})
	}
	if _, err := f.l.LookupToken(f.ctx, f.pool, good); err != nil {
		t.Fatalf("the good token stopped working: %v", err)
	}
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.RevokeToken(f.ctx, tx, acme, "000000000000")
		return err
	})
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("revoke of an unknown token: %v", err)
	}
}

func TestToken_CreateRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	acme := f.org("acme", nil)
	for _, tc := range []struct {
		name  string
		org   string
		role  ledger.Role
		field string
		err   error
	}{
		{"unknown org", "nope", ledger.RoleMember, "", ledger.ErrNotFound},
		{"bad org id", "no spaces", ledger.RoleMember, "org", nil},
		{"missing role", acme, "", "role", nil},
		{"unknown role", acme, "owner", "role", nil},
		{"role in another case", acme, "Admin", "role", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
				_, _, err := f.l.CreateToken(f.ctx, tx, tc.org, tc.role)
				return err
			})
			var verr *ledger.ValidationError
			switch {
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("err = %v, want %v", err, tc.err)
			case tc.field != "" && (!errors.As(err, &verr) || verr.Field != tc.field):
				t.Fatalf("err = %v, want a validation error naming %q", err, tc.field)
			}
		})
	}
	var n int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM api_tokens`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tokens stored by refused requests (%v)", n, err)
	}
	// The database refuses what the ledger would: a token of an org that
	// does not exist, a role outside member and admin.
	for _, sql := range []string{
		`INSERT INTO api_tokens VALUES ('ghost', '0123456789ab', sha256('x'), 'member', now())`,
		`INSERT INTO api_tokens VALUES ('acme', '0123456789ab', sha256('x'), 'owner', now())`,
		`INSERT INTO api_tokens VALUES ('acme', '0123456789ab', 'short', 'member', now())`,
	} {
		if _, err := f.pool.Exec(f.ctx, sql); err == nil {
			t.Errorf("the database accepted %s", sql)
		}
	}
}

func TestRole_Allows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role, need ledger.Role
		want       bool
	}{
		{ledger.RoleMember, ledger.RoleMember, true},
		{ledger.RoleAdmin, ledger.RoleMember, true},
		{ledger.RoleAdmin, ledger.RoleAdmin, true},
		{ledger.RoleMember, ledger.RoleAdmin, false},
		{"", ledger.RoleMember, false},
		{ledger.RoleAdmin, "", false},
	} {
		if got := tc.role.Allows(tc.need); got != tc.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tc.role, tc.need, got, tc.want)
		}
	}
}
