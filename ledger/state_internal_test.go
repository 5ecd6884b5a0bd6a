package ledger

import (
	"context"
	"errors"
	"math"
	"testing"
)

// TestPost_Overflow: a sum that would leave int64 marks the org, and
// persist refuses the transaction before writing anything (a nil tx proves
// it never reaches the database).
func TestPost_Overflow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    orgState
		e    entryRow
	}{
		{"available", orgState{available: math.MaxInt64 - 5}, entryRow{lotDelta: 10}},
		{"debt", orgState{available: math.MinInt64 + 5, debt: math.MaxInt64 - 5}, entryRow{debtDelta: 10}},
		{"held", orgState{held: math.MaxInt64 - 5}, entryRow{heldDelta: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			s.org.ID = "acme"
			s.post(tt.e)
			if !s.overflow {
				t.Fatal("overflow not noticed")
			}
			err := (&Ledger{}).persist(context.Background(), nil, map[string]*orgState{"acme": &s})
			var v *ValidationError
			if !errors.As(err, &v) || v.Field != "amount" {
				t.Fatalf("persist = %v, want a validation error", err)
			}
		})
	}
	ok := orgState{available: 5}
	ok.post(entryRow{lotDelta: 10})
	if ok.overflow || ok.available != 15 {
		t.Fatalf("ordinary sum: %+v", ok)
	}
}

func TestRunsOutWithin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		available, burn int64
		days            int
		want            bool
	}{
		{"no spend", 100, 0, 10, false},
		{"7.3 days left, rule 10", 510_000, 490_000, 10, true},
		{"exactly 10 days left", 700_000, 490_000, 10, false},
		{"in debt", -5, 1, 1, true},
		{"products past int64", math.MaxInt64 / 2, math.MaxInt64, 366, true},
		{"huge balance", math.MaxInt64, 1, 366, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runsOutWithin(tt.available, tt.burn, tt.days); got != tt.want {
				t.Fatalf("runsOutWithin(%d, %d, %d) = %v, want %v", tt.available, tt.burn, tt.days, got, tt.want)
			}
		})
	}
}
