package ledger

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors callers act on. Check them with errors.Is.
var (
	// ErrNotFound: the org, hold or event does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInsufficientCredits: the org cannot cover a reservation (or, under
	// the reject policy, a capture past its hold).
	ErrInsufficientCredits = errors.New("insufficient credits")
	// ErrConflict: the idempotency key was used before with other input, or
	// the object is in a state that refuses the operation.
	ErrConflict = errors.New("conflict")
	// ErrRetry: a transient database failure (serialization failure,
	// deadlock, a usage event another transaction applied since this one
	// looked for it); running the same operation again is safe and may
	// succeed.
	ErrRetry = errors.New("transient database failure, retry")
)

// IsPermanent reports errors no retry can fix: bad input, an unknown org
// or object, a reused idempotency key. Queue handlers archive such work
// instead of retrying it.
func IsPermanent(err error) bool {
	var v *ValidationError
	return errors.As(err, &v) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict)
}

// ValidationError names the field of a request that is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// mapError turns pgx and Postgres errors into the ledger's errors, keeping
// the original in the chain for logs.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrRetry) || errors.Is(err, ErrInsufficientCredits) {
		return err // mapped already
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("%w: %w", ErrRetry, err)
		case "23505": // unique_violation
			// Only these keys are expected races (and usage_events' key in
			// RecordUsage, see usageRace); any other duplicate is a bug to see
			// as itself, not to pass off as an idempotency conflict.
			switch pgErr.ConstraintName {
			case "orgs_pkey":
				return fmt.Errorf("%w: org already exists: %w", ErrConflict, err)
			case "payments_payment": // a payment is credited once, ever, to one org
				return fmt.Errorf("%w: payment credited to another org: %w", ErrConflict, err)
			}
		case "22P02", "22P05": // invalid text representation, untranslatable character
			return &ValidationError{Field: "metadata", Reason: pgErr.Message}
		case "23503": // foreign_key_violation
			if pgErr.ConstraintName != "" && pgErr.TableName != "orgs" {
				return fmt.Errorf("%w: %w", ErrNotFound, err)
			}
		}
	}
	return err
}
