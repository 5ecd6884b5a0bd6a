package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

// refusable runs fn in a savepoint of tx. A refusal (a validation error or a
// conflict, also one the database raised, which aborts what it ran in) rolls
// back to the savepoint and comes back as refused, so the transaction can
// still record it on the event; any other error is err.
func refusable(ctx context.Context, tx pgx.Tx, fn func(pgx.Tx) error) (refused, err error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	ferr := fn(sp)
	var v *ledger.ValidationError
	switch {
	case ferr == nil:
		return nil, sp.Commit(ctx)
	case errors.As(ferr, &v), errors.Is(ferr, ledger.ErrConflict):
		if err := sp.Rollback(ctx); err != nil {
			return nil, fmt.Errorf("rollback to savepoint: %w", err)
		}
		return ferr, nil
	}
	return nil, ferr
}
