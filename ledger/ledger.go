package ledger

import (
	"time"

	"github.com/creditd/creditd/config"
)

// Clock is the ledger's only source of "now". Cycle jobs and tests inject
// their own, so a year of cycles can run in seconds.
type Clock interface{ Now() time.Time }

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// SystemClock reads the wall clock.
var SystemClock Clock = ClockFunc(time.Now)

// Ledger applies credit operations. It holds no connection: every write takes
// the caller's pgx.Tx and every read a DBTX, so the caller decides what
// shares a transaction.
type Ledger struct {
	catalog *config.Catalog
	clock   Clock
}

// New returns a Ledger pricing usage with catalog and reading time from
// clock (SystemClock when nil).
func New(catalog *config.Catalog, clock Clock) *Ledger {
	if clock == nil {
		clock = SystemClock
	}
	return &Ledger{catalog: catalog, clock: clock}
}

// Catalog returns the catalog the ledger prices with.
func (l *Ledger) Catalog() *config.Catalog { return l.catalog }

// now is truncated to microseconds, Postgres' precision, so what the ledger
// computes equals what it reads back.
func (l *Ledger) now() time.Time { return l.clock.Now().UTC().Truncate(time.Microsecond) }
