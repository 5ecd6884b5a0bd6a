package main

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

// tokenCreated is `token create --json`: the token, shown this once, and
// what is stored about it.
type tokenCreated struct {
	Plaintext string `json:"token"`
	ledger.Token
}

// runTokenCreate makes an org API token. The token alone goes to stdout, so
// that TOKEN=$(creditd token create ORG --role member) captures it; the
// reminder that it is shown only once goes to stderr.
func runTokenCreate(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	role := fs.String("role", "", "member (record usage, hold credits, read) or admin (also change billing) (required)")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	switch r := ledger.Role(*role); r {
	case ledger.RoleMember, ledger.RoleAdmin:
	case "":
		return invalid("role", "required")
	default:
		return invalid("role", "must be member or admin, not %q", *role)
	}
	if err := a.connect(); err != nil {
		return err
	}
	if _, err := a.requireOrg(pos[0]); err != nil {
		return err
	}
	var plaintext string
	var tok ledger.Token
	err = ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		plaintext, tok, err = a.ledger.CreateToken(a.ctx, tx, pos[0], ledger.Role(*role))
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(tokenCreated{Plaintext: plaintext, Token: tok})
	}
	fmt.Fprintln(a.stdout, plaintext)
	fmt.Fprintf(a.stderr, "creditd: token %s for org %s, role %s: shown this once (only its hash is stored); keep it now\n",
		tok.ID, tok.OrgID, tok.Role)
	return nil
}
