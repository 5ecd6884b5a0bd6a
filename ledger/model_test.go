package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// The model is a deliberately plain in-memory ledger: slices and maps, no
// SQL, no batching. TestLedgerMatchesModel drives it and the real ledger with
// the same random operations and demands the same outcomes, balances and
// histories.
type model struct {
	policy  ledger.Policy
	now     time.Time
	lots    []*mLot
	holds   map[string]*mHold
	debt    int64
	done    map[string]string // idempotency key -> request fingerprint
	entries []mEntry
	seq     int
}

type mLot struct {
	remaining int64
	expires   *time.Time
	seq       int
}

type mHold struct {
	amount  int64
	expires time.Time
	status  string
}

type mEntry struct {
	kind   string
	amount int64
}

func (m *model) clone() *model {
	c := *m
	c.lots = nil
	for _, l := range m.lots {
		lc := *l
		c.lots = append(c.lots, &lc)
	}
	c.holds = map[string]*mHold{}
	for k, h := range m.holds {
		hc := *h
		c.holds[k] = &hc
	}
	c.done = map[string]string{}
	for k, v := range m.done {
		c.done[k] = v
	}
	c.entries = slices.Clone(m.entries)
	return &c
}

func (m *model) held() (sum int64) {
	for _, h := range m.holds {
		if h.status == ledger.HoldActive {
			sum += h.amount
		}
	}
	return sum
}

func (m *model) available() int64 {
	var sum int64
	for _, l := range m.lots {
		sum += l.remaining
	}
	return sum - m.held() - m.debt
}

// ordered returns the lots in consumption order.
func (m *model) ordered() []*mLot {
	out := slices.Clone(m.lots)
	slices.SortStableFunc(out, func(a, b *mLot) int {
		switch {
		case a.expires == nil && b.expires != nil:
			return 1
		case a.expires != nil && b.expires == nil:
			return -1
		case a.expires != nil && !a.expires.Equal(*b.expires):
			return a.expires.Compare(*b.expires)
		}
		return a.seq - b.seq
	})
	return out
}

func (m *model) expireLots() {
	for _, l := range m.ordered() {
		if l.remaining > 0 && l.expires != nil && !l.expires.After(m.now) {
			m.entries = append(m.entries, mEntry{"expiry", -l.remaining})
			l.remaining = 0
		}
	}
}

func (m *model) expireHolds() {
	ids := []string{}
	for id, h := range m.holds {
		if h.status == ledger.HoldActive && !h.expires.After(m.now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := m.holds[a].expires.Compare(m.holds[b].expires); c != 0 {
			return c
		}
		if a < b {
			return -1
		}
		return 1
	})
	for _, id := range ids {
		m.entries = append(m.entries, mEntry{"release", m.holds[id].amount})
		m.holds[id].status = ledger.HoldExpired
	}
}

func (m *model) consume(kind string, amount int64) {
	for _, l := range m.ordered() {
		if amount == 0 {
			break
		}
		take := min(l.remaining, amount)
		if take == 0 {
			continue
		}
		l.remaining -= take
		amount -= take
		m.entries = append(m.entries, mEntry{kind, -take})
	}
	if amount > 0 {
		m.debt += amount
		m.entries = append(m.entries, mEntry{kind, -amount})
	}
}

// replay reports whether key was done before; a different fingerprint is a conflict.
func (m *model) replay(key, fp string) (bool, error) {
	old, ok := m.done[key]
	if !ok {
		m.done[key] = fp
		return false, nil
	}
	if old != fp {
		return true, ledger.ErrConflict
	}
	return true, nil
}

func (m *model) grant(key string, amount int64, expires *time.Time) error {
	m.expireLots()
	if seen, err := m.replay("grant:"+key, fmt.Sprint(amount, expires)); seen {
		return err
	}
	if expires != nil && !expires.After(m.now) {
		return errValidation
	}
	m.seq++
	l := &mLot{remaining: amount, expires: expires, seq: m.seq}
	m.lots = append(m.lots, l)
	m.entries = append(m.entries, mEntry{"grant", amount})
	if m.debt > 0 {
		r := min(m.debt, amount)
		l.remaining -= r
		m.debt -= r
		m.entries = append(m.entries, mEntry{"debt_repayment", 0})
	}
	return nil
}

var errValidation = errors.New("validation")

func (m *model) usage(event string, amount int64) (ledger.UsageStatus, error) {
	m.expireLots()
	m.expireHolds()
	if seen, err := m.replay("usage:"+event, fmt.Sprint(amount)); seen {
		return "", err
	}
	if m.policy == ledger.PolicyReject && amount > m.available() {
		return ledger.UsageRejected, nil
	}
	m.consume("usage", amount)
	return ledger.UsageApplied, nil
}

func (m *model) reserve(id string, amount int64, ttl time.Duration) error {
	m.expireLots()
	m.expireHolds()
	if seen, err := m.replay("hold:"+id, fmt.Sprint(amount, ttl)); seen {
		return err
	}
	if m.holds[id] != nil {
		return ledger.ErrConflict
	}
	if amount > m.available() {
		return ledger.ErrInsufficientCredits
	}
	m.holds[id] = &mHold{amount: amount, expires: m.now.Add(ttl), status: ledger.HoldActive}
	m.entries = append(m.entries, mEntry{"hold", -amount})
	return nil
}

func (m *model) capture(id string, amount int64) error {
	m.expireLots()
	if seen, err := m.replay("capture:"+id, fmt.Sprint(amount)); seen {
		return err
	}
	m.expireHolds()
	h := m.holds[id]
	if h == nil {
		return ledger.ErrNotFound
	}
	if h.status != ledger.HoldActive {
		return ledger.ErrConflict
	}
	if m.policy == ledger.PolicyReject && amount > h.amount && amount-h.amount > m.available() {
		return ledger.ErrInsufficientCredits
	}
	h.status = ledger.HoldCaptured
	m.entries = append(m.entries, mEntry{"capture", h.amount})
	m.consume("capture", amount)
	return nil
}

func (m *model) release(id string) error {
	m.expireLots()
	m.expireHolds()
	h := m.holds[id]
	switch {
	case h == nil:
		return ledger.ErrNotFound
	case h.status == ledger.HoldActive:
		h.status = ledger.HoldReleased
		m.entries = append(m.entries, mEntry{"release", h.amount})
	case h.status == ledger.HoldCaptured:
		return ledger.ErrConflict
	}
	return nil
}

func (m *model) sweep() {
	m.expireLots()
	m.expireHolds()
}

// sameError says whether the ledger's error is the one the model expects.
func sameError(got, want error) bool {
	switch {
	case want == nil:
		return got == nil
	case want == errValidation:
		var v *ledger.ValidationError
		return errors.As(got, &v)
	default:
		return errors.Is(got, want)
	}
}

func TestLedgerMatchesModel(t *testing.T) {
	t.Parallel()
	pool := ledgertest.NewPool(t)
	const sequences, steps = 24, 80
	for seed := uint64(1); seed <= sequences; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 42))
			policy := ledger.PolicyDebt
			if seed%2 == 0 {
				policy = ledger.PolicyReject
			}
			clock := ledgertest.NewClock(t0.Add(time.Hour))
			l := ledger.New(config.DefaultCatalog(), clock)
			f := &fixture{t: t, ctx: t.Context(), pool: pool, clock: clock, l: l}
			org := f.org(fmt.Sprintf("model-%d", seed), &orgOpts{policy: policy})
			m := &model{policy: policy, now: clock.Now(), holds: map[string]*mHold{}, done: map[string]string{}}

			amount := func(maxCredits int) int64 { return rng.Int64N(int64(maxCredits)*1000) + 1 }
			var grants, events, holds []string
			grantArgs := map[string][2]any{}
			eventArgs := map[string]int64{}
			pick := func(ids []string) string { return ids[rng.IntN(len(ids))] }

			for step := 0; step < steps; step++ {
				var desc string
				var gotErr, wantErr error
				next := m.clone()
				switch op := rng.IntN(100); {
				case op < 20:
					key := fmt.Sprintf("g%d", step)
					a := amount(60)
					var exp *time.Time
					if rng.IntN(2) == 0 {
						e := clock.Now().Add(time.Duration(rng.IntN(72)+1) * time.Hour)
						exp = &e
					}
					if len(grants) > 0 && rng.IntN(4) == 0 { // replay an earlier grant
						key = pick(grants)
						a, exp = grantArgs[key][0].(int64), grantArgs[key][1].(*time.Time)
					}
					grants, grantArgs[key] = append(grants, key), [2]any{a, exp}
					desc = fmt.Sprintf("grant %s %d exp=%v", key, a, exp)
					wantErr = next.grant(key, a, exp)
					err := ledger.WithTx(f.ctx, pool, func(tx pgx.Tx) error {
						_, err := l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: credits.Credits(a), Source: ledger.SourcePromo, Key: key, ExpiresAt: exp})
						return err
					})
					gotErr = err
				case op < 55:
					ev := fmt.Sprintf("e%d", step)
					a := amount(25)
					if len(events) > 0 && rng.IntN(4) == 0 {
						ev = pick(events)
						a = eventArgs[ev]
						if rng.IntN(5) == 0 {
							a++ // same id, other amount: a conflict
						}
					}
					if _, ok := eventArgs[ev]; !ok {
						events, eventArgs[ev] = append(events, ev), a
					}
					desc = fmt.Sprintf("usage %s %d", ev, a)
					var wantStatus ledger.UsageStatus
					wantStatus, wantErr = next.usage(ev, a)
					c := credits.Credits(a)
					res, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: ev, Amount: &c})
					gotErr = err
					if err == nil && wantStatus != "" && res.Status != wantStatus {
						t.Fatalf("step %d %s: status %s, model %s", step, desc, res.Status, wantStatus)
					}
				case op < 70:
					id := fmt.Sprintf("h%d", step)
					a := amount(40)
					ttl := time.Duration(rng.IntN(48)+1) * time.Hour
					holds = append(holds, id)
					desc = fmt.Sprintf("reserve %s %d %s", id, a, ttl)
					wantErr = next.reserve(id, a, ttl)
					gotErr = ledger.WithTx(f.ctx, pool, func(tx pgx.Tx) error {
						_, err := l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: id, Amount: credits.Credits(a), TTL: ttl})
						return err
					})
				case op < 80 && len(holds) > 0:
					id := pick(holds)
					a := rng.Int64N(60000)
					desc = fmt.Sprintf("capture %s %d", id, a)
					wantErr = next.capture(id, a)
					gotErr = ledger.WithTx(f.ctx, pool, func(tx pgx.Tx) error {
						_, err := l.Capture(f.ctx, tx, org, id, credits.Credits(a), "")
						return err
					})
				case op < 87 && len(holds) > 0:
					id := pick(holds)
					desc = "release " + id
					wantErr = next.release(id)
					gotErr = ledger.WithTx(f.ctx, pool, func(tx pgx.Tx) error {
						_, err := l.Release(f.ctx, tx, org, id)
						return err
					})
				case op < 94:
					d := time.Duration(rng.IntN(30*60)) * time.Minute
					desc = fmt.Sprintf("advance %s", d)
					clock.Advance(d)
					next.now = clock.Now()
				default:
					desc = "sweep"
					next.sweep()
					gotErr = ledger.WithTx(f.ctx, pool, func(tx pgx.Tx) error {
						_, err := l.ExpireDue(f.ctx, tx, org)
						return err
					})
				}
				if !sameError(gotErr, wantErr) {
					t.Fatalf("step %d %s: ledger error %v, model error %v", step, desc, gotErr, wantErr)
				}
				if wantErr == nil {
					m = next // a failed operation rolls back: the model keeps its state
				}
				var avail, held, debt int64
				if err := pool.QueryRow(f.ctx, `SELECT available, held, debt FROM balances WHERE org_id = $1`, org).
					Scan(&avail, &held, &debt); err != nil {
					t.Fatal(err)
				}
				if avail != m.available() || held != m.held() || debt != m.debt {
					t.Fatalf("step %d %s: ledger available=%d held=%d debt=%d, model %d %d %d",
						step, desc, avail, held, debt, m.available(), m.held(), m.debt)
				}
			}
			history := f.history(org)
			got := make([]mEntry, len(history))
			for i, e := range history {
				got[i] = mEntry{e.Kind, int64(e.Amount)}
			}
			if !slices.Equal(got, m.entries) {
				t.Fatalf("history differs from the model:\nledger %v\nmodel  %v", got, m.entries)
			}
		})
	}
	t.Cleanup(func() {
		rep, err := ledger.New(config.DefaultCatalog(), nil).Verify(context.Background(), pool)
		if err != nil || !rep.OK {
			t.Errorf("verify after the model runs: %+v, %v", rep, err)
		}
	})
}
