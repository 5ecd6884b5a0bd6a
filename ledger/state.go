package ledger

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// orgState is one org's ledger state, loaded under the org's row lock, changed
// in memory by the operations of one transaction and written back in one
// pipelined batch. Loading and writing in batches keeps a usage transaction to
// four round trips (begin, load, write, commit) however much it does.
type orgState struct {
	org    Org
	anchor Anchor
	cycle  Cycle
	at     time.Time // the instant of this transaction's entries

	available, held, debt int64
	lastAt                time.Time

	lots      []*lotState // open lots in consumption order, then new ones
	ops       map[string]*opRow
	counters  map[counterKey]*counterState
	limits    map[counterKey]int64
	holds     map[string]*holdState
	newLotIDs int64 // negative placeholder ids for lots created here

	entries []entryRow
	newOps  []*opRow
	events  []usageRow

	// overflow is set when a sum would leave int64; persist then refuses
	// the whole transaction.
	overflow bool
	// cyclesDirty: the cycle engine advanced the org (balances.next_cycle_at,
	// cycles_done); termsDirty: its plan terms changed (the orgs row).
	cyclesDirty, termsDirty bool

	// The alert gates read with the lock (see needsAlerts) and what
	// evaluation decided. alertsForce evaluates whatever the gates say;
	// alertsQuiet records firings without notifications (org creation);
	// alertsDirty writes the gates back.
	alertFire, alertRearm                 *int64
	alertUsage                            bool
	alertsForce, alertsQuiet, alertsDirty bool
	// credited: an entry of this transaction added credits (a grant, a
	// restore): only then do fired balance rules re-arm, so holds reserved
	// and released around a level cannot make an alert storm.
	credited                 bool
	alertFired, alertRearmed []firedState
	notes                    []notificationRow
	outbox                   []outboxRow

	// rechargeAt is the recharge gate read with the lock (balances.recharge_at);
	// recharges are the attempts this transaction opened. rechargeCheck
	// looks at the gate without a write: the settings or the card changed,
	// or a sweep passes (the cap of the cycle before is spent no more).
	rechargeAt    *int64
	recharges     []rechargeRow
	rechargeCheck bool
}

type lotState struct {
	id        int64
	source    string
	amount    int64
	remaining int64
	grantedAt time.Time
	expiresAt *time.Time
	key       string
	isNew     bool
	dirty     bool
}

type opRow struct {
	key    string
	kind   string
	hash   []byte
	result json.RawMessage
	// usage is the result of a usage event, kept as a struct: usage is the
	// hot path and is not stored as JSON.
	usage *UsageResult
}

type orgItem struct{ org, id string }

type counterKey struct {
	scope   string // org, team, user
	subject string
}

type counterState struct {
	credits, runs int64
	addCredits    int64
	addRuns       int64
}

type holdState struct {
	id        string
	amount    int64
	status    string
	captured  *int64
	feature   string
	team      string
	user      string
	createdAt time.Time
	expiresAt time.Time
	closedAt  *time.Time
	isNew     bool
	dirty     bool
}

type entryRow struct {
	kind         string
	amount       int64
	balanceAfter int64
	lotID        *int64
	lotDelta     int64
	holdID       *string
	heldDelta    int64
	debtDelta    int64
	key          string
	eventID      *string
	team         *string
	user         *string
	feature      *string
	taskID       *string
	paymentID    *string
	at           time.Time
	carried      *int64 // rollover entries: the allocation credits carried into the new cycle
}

type usageRow struct {
	eventID     string
	hash        []byte
	debt        int64
	balance     int64
	status      string
	reason      *string
	feature     *string
	units       *int64
	runs        *int64
	overageRuns int64
	amount      int64
	team        *string
	user        *string
	occurredAt  time.Time
	metadata    []byte
}

// loadNeeds says what beyond the balance and open lots a transaction reads.
type loadNeeds struct {
	keys   []string  // operation keys (of every org loaded) to check for replays
	events []orgItem // usage events to check for replays
	teams  []string
	users  []string
	holds  []string // hold ids
	// expiredHolds also loads every active hold past its expiry, to release.
	expiredHolds bool
	// cycles is set by the cycle engine: it reads the orgs' plan terms again
	// after the lock (see loadTermsSQL) and expires lots itself, in order
	// with the boundaries it performs.
	cycles bool
	// at, when after the clock, is the instant to act for (a cycle preview
	// of the future): elapsed holds and the transaction's instant use it.
	at time.Time
	// allLimits loads every team and user limit of the orgs and their
	// counters, for evaluating usage alerts of all of them.
	allLimits bool
}

// Every per-org read walks the sorted org ids with unnest and reads each org
// in a LATERAL subquery, which Postgres runs as one index probe per org
// (with sequential scans disabled for the transaction; see probePlansSQL).
// With "org_id = ANY($1)" the planner may cache a generic plan that hashes a
// scan of the whole table (seen: every transaction reading all 10,000 orgs).
// OFFSET 0 keeps the planner from flattening the subquery into such a join.
// For the lock, the nested loop also takes the row locks in the array's
// order, which is what makes overlapping batches deadlock-free.
//
// probePlansSQL starts every transaction that loads orgs. Its statements
// (the reads here and the writes of persist) are keyed by org, so one index
// probe per org or key is always the right plan, and two planner habits got
// in the way:
//   - It prices a sequential scan by the table's last statistics. Analyzed
//     while it held a page or two (a new database: autovacuum analyzes after
//     the first 50 rows), a table looks cheaper to scan than to probe, and
//     the cached plan then scans the grown table on every call until the
//     next analyze, a minute or more later. Seen: the usage lookup taking
//     0.7 ms instead of 0.01 ms, 70% of Postgres' time, in a benchmark.
//   - Given array parameters, it finds a plan made for the array's actual
//     length cheaper than the generic one and so plans again on every call:
//     28% of Postgres' time in a group-commit benchmark.
//
// So these transactions disable sequential scans and force the generic
// plan (both SET LOCAL: sweeps, reports and verify keep their scans).
// Measured with BenchmarkUsage_SpreadOrgs: 1,237 -> 2,095 events/s.
const probePlansSQL = `SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)`

const lockOrgsSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT ` + orgSelect + `,
           b.available, b.held, b.debt, b.last_at, b.alert_fire, b.alert_rearm, b.alert_usage, b.recharge_at
    FROM balances b JOIN orgs o ON o.org_id = b.org_id
    WHERE b.org_id = k.org_id
    FOR UPDATE OF b
) x ON true`

// Lookups by (org, key) pairs are LATERAL subqueries with LIMIT 1, which
// Postgres runs as one primary-key probe per pair. The plain forms
// (row IN (unnest), org_id = ANY AND key = ANY) let the planner match only
// org_id in the index when it plans on an empty or unanalyzed table, and pgx's
// cached prepared statement then keeps that plan: every lookup would read all
// of the org's rows, a cost that grows with the table.
const loadOpsSQL = `
SELECT x.org_id, x.key, x.kind, x.request_hash, x.result
FROM unnest($1::text[], $2::text[]) AS k(org_id, key)
JOIN LATERAL (SELECT * FROM operations o WHERE o.org_id = k.org_id AND o.key = k.key LIMIT 1) x ON true`

const loadUsageSQL = `
SELECT x.org_id, x.event_id, x.status, coalesce(x.reason, ''), x.amount, x.debt, x.overage_runs, x.balance_after,
       x.request_hash
FROM unnest($1::text[], $2::text[]) AS k(org_id, event_id)
JOIN LATERAL (SELECT * FROM usage_events u WHERE u.org_id = k.org_id AND u.event_id = k.event_id LIMIT 1) x ON true`

const loadLotsSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, lot_id, source, amount, remaining, granted_at, expires_at, key FROM lots l
    WHERE l.org_id = k.org_id AND l.remaining > 0
    OFFSET 0
) x ON true`

// Counters of the cycles that may contain the transaction's instant; the exact
// cycle is picked in Go once the org's anchor is known. There is no upper
// bound: an org's instant can be ahead of this worker's clock (another
// worker's clock ran ahead), and its cycle's counters must still be seen.
const loadCountersSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, cycle_start, scope, subject, credits, runs FROM cycle_usage c
    WHERE c.org_id = k.org_id AND c.cycle_start > $2::timestamptz - interval '32 days'
      AND (c.scope = 'org' OR (c.scope = 'team' AND c.subject = ANY($3)) OR (c.scope = 'user' AND c.subject = ANY($4))
           OR ($5 AND EXISTS (SELECT 1 FROM limits m WHERE m.org_id = c.org_id AND m.scope = c.scope AND m.subject = c.subject)))
    OFFSET 0
) x ON true`

const loadLimitsSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, scope, subject, monthly_limit FROM limits m
    WHERE m.org_id = k.org_id AND ((m.scope = 'team' AND m.subject = ANY($2)) OR (m.scope = 'user' AND m.subject = ANY($3)))
    OFFSET 0
) x ON true`

const loadAllLimitsSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, scope, subject, monthly_limit FROM limits m WHERE m.org_id = k.org_id
    OFFSET 0
) x ON true`

const loadHoldsSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, hold_id, amount, status, captured, coalesce(feature, ''), coalesce(team, ''), coalesce(user_id, ''),
           created_at, expires_at, closed_at
    FROM holds h
    WHERE h.org_id = k.org_id AND (h.hold_id = ANY($2) OR ($3 AND h.status = 'active' AND h.expires_at <= $4))
    OFFSET 0
) x ON true`

// load locks the orgs' balance rows (in org id order, so two transactions on
// overlapping orgs cannot deadlock) and reads their state. Every statement
// after the lock runs after the lock is granted and sees what the previous
// holder committed.
//
// The one read before the lock is the lookup of usage events applied
// already: a busy org's lock is what bounds its throughput, and for a batch
// of 1,000 events that is 1,000 index probes. An event the previous holder
// committed after this lookup is then applied again in memory, and writing
// it fails on usage_events' primary key, which RecordUsage makes ErrRetry: the
// retry's lookup finds it and replays it. That race needs the same event in
// two transactions at once (a redelivered task), so it is rare, and the
// ledger never holds the event twice.
func (l *Ledger) load(ctx context.Context, tx pgx.Tx, orgIDs []string, needs loadNeeds) (map[string]*orgState, error) {
	orgIDs = slices.Clone(orgIDs)
	slices.Sort(orgIDs)
	orgIDs = slices.Compact(orgIDs)
	now := l.now()
	if needs.at.After(now) {
		now = needs.at
	}

	var keyOrgs, keys, eventOrgs, events []string
	for _, org := range orgIDs {
		for _, k := range needs.keys {
			keyOrgs, keys = append(keyOrgs, org), append(keys, k)
		}
	}
	for _, e := range needs.events {
		eventOrgs, events = append(eventOrgs, e.org), append(events, e.id)
	}
	holdIDs := needs.holds
	teams, users := needs.teams, needs.users
	if teams == nil {
		teams = []string{}
	}
	if users == nil {
		users = []string{}
	}

	// Only the queries this transaction needs: every statement costs the
	// server a round of parse, bind and execute.
	loadHolds := len(holdIDs) > 0 || needs.expiredHolds
	b := &pgx.Batch{}
	b.Queue(probePlansSQL)
	if len(events) > 0 {
		b.Queue(loadUsageSQL, eventOrgs, events)
	}
	b.Queue(lockOrgsSQL, orgIDs)
	if needs.cycles {
		b.Queue(loadTermsSQL, orgIDs)
	}
	if len(keys) > 0 {
		b.Queue(loadOpsSQL, keyOrgs, keys)
	}
	b.Queue(loadLotsSQL, orgIDs)
	b.Queue(loadCountersSQL, orgIDs, now, teams, users, needs.allLimits)
	hasLimits := len(teams)+len(users) > 0 || needs.allLimits
	switch {
	case needs.allLimits:
		b.Queue(loadAllLimitsSQL, orgIDs)
	case hasLimits:
		b.Queue(loadLimitsSQL, orgIDs, teams, users)
	}
	if loadHolds {
		if holdIDs == nil {
			holdIDs = []string{}
		}
		b.Queue(loadHoldsSQL, orgIDs, holdIDs, needs.expiredHolds, now)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var applied []*opRow
	if len(events) > 0 {
		var err error
		if applied, err = loadUsage(br); err != nil {
			return nil, err
		}
	}

	states := make(map[string]*orgState, len(orgIDs))
	rows, _ := br.Query()
	for rows.Next() {
		s := &orgState{
			ops: map[string]*opRow{}, counters: map[counterKey]*counterState{},
			limits: map[counterKey]int64{}, holds: map[string]*holdState{},
		}
		var or orgRow
		if err := rows.Scan(append(or.dest(), &s.available, &s.held, &s.debt, &s.lastAt, &s.alertFire, &s.alertRearm, &s.alertUsage, &s.rechargeAt)...); err != nil {
			return nil, fmt.Errorf("lock orgs: %w", err)
		}
		org, err := or.finish()
		if err != nil {
			return nil, err
		}
		s.org = org
		anchor, err := s.org.BillingAnchor()
		if err != nil {
			return nil, fmt.Errorf("org %s: %w", s.org.ID, err)
		}
		s.anchor = anchor
		s.at = now
		if s.lastAt.After(s.at) {
			s.at = s.lastAt.UTC() // entries of an org never go back in time
		}
		s.cycle = anchor.CycleAt(s.at)
		states[s.org.ID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock orgs: %w", err)
	}
	for _, id := range orgIDs {
		if states[id] == nil {
			return nil, fmt.Errorf("org %s: %w", id, ErrNotFound)
		}
	}
	if needs.cycles {
		if err := loadTerms(br, states); err != nil {
			return nil, err
		}
	}

	if len(keys) > 0 {
		if err := loadOps(br, states); err != nil {
			return nil, err
		}
	}
	for _, op := range applied {
		states[op.usage.OrgID].ops[op.key] = op
	}

	rows, _ = br.Query()
	for rows.Next() {
		var org string
		lot := &lotState{}
		if err := rows.Scan(&org, &lot.id, &lot.source, &lot.amount, &lot.remaining, &lot.grantedAt, &lot.expiresAt, &lot.key); err != nil {
			return nil, fmt.Errorf("load lots: %w", err)
		}
		states[org].lots = append(states[org].lots, lot)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load lots: %w", err)
	}
	for _, s := range states {
		slices.SortFunc(s.lots, consumptionOrder)
	}

	rows, _ = br.Query()
	for rows.Next() {
		var org, scope, subject string
		var start time.Time
		var c counterState
		if err := rows.Scan(&org, &start, &scope, &subject, &c.credits, &c.runs); err != nil {
			return nil, fmt.Errorf("load cycle usage: %w", err)
		}
		if s := states[org]; s.cycle.Start.Equal(start) {
			s.counters[counterKey{scope, subject}] = &c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load cycle usage: %w", err)
	}

	if hasLimits {
		if err := loadLimits(br, states); err != nil {
			return nil, err
		}
	}
	if loadHolds {
		if err := loadHoldRows(br, states); err != nil {
			return nil, err
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if !needs.cycles {
		for _, s := range states {
			s.expireDueLots()
		}
	}
	return states, nil
}

func loadOps(br pgx.BatchResults, states map[string]*orgState) error {
	rows, _ := br.Query()
	for rows.Next() {
		var org string
		op := &opRow{}
		if err := rows.Scan(&org, &op.key, &op.kind, &op.hash, &op.result); err != nil {
			return fmt.Errorf("load operations: %w", err)
		}
		states[org].ops[op.key] = op
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load operations: %w", err)
	}
	return nil
}

// loadUsage reads which of the transaction's usage events were applied
// already, as operations that replay them.
func loadUsage(br pgx.BatchResults) ([]*opRow, error) {
	var ops []*opRow
	rows, _ := br.Query()
	for rows.Next() {
		var status string
		var hash []byte
		var cost, debt, balance int64
		res := UsageResult{}
		if err := rows.Scan(&res.OrgID, &res.EventID, &status, &res.Reason, &cost, &debt, &res.OverageRuns, &balance, &hash); err != nil {
			return nil, fmt.Errorf("load usage events: %w", err)
		}
		res.Status = UsageStatus(status)
		res.Cost, res.Debt, res.BalanceAfter = credits.Credits(cost), credits.Credits(debt), credits.Credits(balance)
		key := usageKey(res.EventID)
		ops = append(ops, &opRow{key: key, kind: "usage", hash: hash, usage: &res})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load usage events: %w", err)
	}
	return ops, nil
}

func loadLimits(br pgx.BatchResults, states map[string]*orgState) error {
	rows, _ := br.Query()
	for rows.Next() {
		var org, scope, subject string
		var limit int64
		if err := rows.Scan(&org, &scope, &subject, &limit); err != nil {
			return fmt.Errorf("load limits: %w", err)
		}
		states[org].limits[counterKey{scope, subject}] = limit
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load limits: %w", err)
	}
	return nil
}

func loadHoldRows(br pgx.BatchResults, states map[string]*orgState) error {
	rows, _ := br.Query()
	for rows.Next() {
		var org string
		h := &holdState{}
		if err := rows.Scan(&org, &h.id, &h.amount, &h.status, &h.captured, &h.feature, &h.team, &h.user,
			&h.createdAt, &h.expiresAt, &h.closedAt); err != nil {
			return fmt.Errorf("load holds: %w", err)
		}
		states[org].holds[h.id] = h
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load holds: %w", err)
	}
	return nil
}

// hashRequest fingerprints a request for the idempotency check.
func hashRequest(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ledger: hash request %T: %v", v, err)) // requests are plain structs
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// replay looks the key up among the operations loaded or done in this
// transaction. found is false for a new key; a key with another request hash
// is ErrConflict.
func (s *orgState) replay(key string, hash []byte, out any) (found bool, err error) {
	op, ok := s.ops[key]
	if !ok {
		return false, nil
	}
	if string(op.hash) != string(hash) {
		return true, fmt.Errorf("%w: key %q was used before with a different request", ErrConflict, key)
	}
	if u, ok := out.(*UsageResult); ok && op.usage != nil {
		*u = *op.usage
		return true, nil
	}
	if err := json.Unmarshal(op.result, out); err != nil {
		return true, fmt.Errorf("replay %q: %w", key, err)
	}
	return true, nil
}

// replayable is a result that can say it was replayed.
type replayable interface {
	UsageResult | GrantResult | HoldResult | RestoreResult
}

// replayed finishes an operation whose key was seen before: it still writes
// what loading found due (expired lots), so every successful call leaves the
// org in the same state whether or not it was a replay.
func replayed[R replayable](ctx context.Context, l *Ledger, tx pgx.Tx, states map[string]*orgState, res R, err error) (R, error) {
	if err != nil {
		var zero R
		return zero, err
	}
	switch r := any(&res).(type) {
	case *GrantResult:
		r.Replayed = true
	case *HoldResult:
		r.Replayed = true
	case *RestoreResult:
		r.Replayed = true
	case *UsageResult:
		r.Replayed = true
	}
	return res, l.persist(ctx, tx, states)
}

// remember records an operation's result under its key. Usage events are
// their own record (usage_events), so they are kept only in memory here, to
// catch a repeat within the same transaction.
func (s *orgState) remember(key, kind string, hash []byte, result any) {
	if u, ok := result.(UsageResult); ok {
		s.ops[key] = &opRow{key: key, kind: kind, hash: hash, usage: &u}
		return
	}
	b, err := json.Marshal(result)
	if err != nil {
		panic(fmt.Sprintf("ledger: result %T: %v", result, err))
	}
	op := &opRow{key: key, kind: kind, hash: hash, result: b}
	s.ops[key] = op
	s.newOps = append(s.newOps, op)
}

// post appends an entry and applies it to the balance.
func (s *orgState) post(e entryRow) {
	if e.lotDelta > 0 {
		s.credited = true
	}
	e.amount = s.add(s.add(e.lotDelta, -e.heldDelta), -e.debtDelta)
	s.available = s.add(s.available, e.amount)
	s.held = s.add(s.held, e.heldDelta)
	s.debt = s.add(s.debt, e.debtDelta)
	e.balanceAfter = s.available
	if e.at.IsZero() {
		e.at = s.at
	}
	if e.at.After(s.lastAt) {
		s.lastAt = e.at
	}
	s.entries = append(s.entries, e)
}

// add returns a+b, noting an overflow of int64 (amounts are bounded by
// MaxAmount, so only an absurd number of operations can get here).
func (s *orgState) add(a, b int64) int64 {
	sum := a + b
	if (b > 0 && sum < a) || (b < 0 && sum > a) {
		s.overflow = true
	}
	return sum
}

// expireDueLots writes an expiry entry for every open lot whose expiry has
// passed. Every transaction does this first, so no operation ever spends or
// counts expired credits, even when the expiry sweep is late.
func (s *orgState) expireDueLots() {
	for _, lot := range s.lots {
		if lot.remaining == 0 || lot.expiresAt == nil || lot.expiresAt.After(s.at) {
			continue
		}
		at := lot.expiresAt.UTC()
		if at.Before(s.lastAt) {
			at = s.lastAt.UTC()
		}
		id := lot.id
		s.post(entryRow{kind: "expiry", lotID: &id, lotDelta: -lot.remaining, key: fmt.Sprintf("expiry:%d", lot.id), at: at})
		lot.remaining = 0
		lot.dirty = true
	}
}

// consume takes amount from the lots in consumption order with entries
// shaped like tmpl, and books what the lots cannot cover as debt.
func (s *orgState) consume(amount int64, tmpl entryRow) (debt int64) {
	left := amount
	for _, lot := range s.lots {
		if left == 0 {
			break
		}
		if lot.remaining == 0 {
			continue
		}
		take := min(lot.remaining, left)
		lot.remaining -= take
		lot.dirty = true
		left -= take
		e := tmpl
		id := lot.id
		e.lotID, e.lotDelta = &id, -take
		s.post(e)
	}
	if left > 0 {
		e := tmpl
		e.debtDelta = left
		s.post(e)
	}
	return left
}

// addLot creates a lot, posts its grant entry, and repays debt from it first.
func (s *orgState) addLot(kind, source string, amount int64, expiresAt *time.Time, key string, tmpl entryRow) (lot *lotState, repaid int64) {
	s.newLotIDs--
	lot = &lotState{id: s.newLotIDs, source: source, amount: amount, remaining: amount, grantedAt: s.at,
		expiresAt: expiresAt, key: key, isNew: true}
	// Keep consumption order: insert before the first lot that is consumed later.
	i := sort.Search(len(s.lots), func(i int) bool { return consumedBefore(lot, s.lots[i]) })
	s.lots = slices.Insert(s.lots, i, lot)
	e := tmpl
	e.kind, e.key = kind, key
	id := lot.id
	e.lotID, e.lotDelta = &id, amount
	s.post(e)
	if s.debt > 0 {
		repaid = min(s.debt, amount)
		lot.remaining -= repaid
		r := tmpl
		r.kind, r.key = "debt_repayment", key
		r.lotID, r.lotDelta, r.debtDelta = &id, -repaid, -repaid
		s.post(r)
	}
	return lot, repaid
}

// consumptionOrder compares lots for slices.SortFunc.
func consumptionOrder(a, b *lotState) int {
	switch {
	case consumedBefore(a, b):
		return -1
	case consumedBefore(b, a):
		return 1
	}
	return cmp.Compare(a.id, b.id)
}

// consumedBefore is the consumption order: soonest expiry first,
// never-expiring last, then oldest grant.
func consumedBefore(a, b *lotState) bool {
	switch {
	case a.expiresAt != nil && b.expiresAt == nil:
		return true
	case a.expiresAt == nil && b.expiresAt != nil:
		return false
	case a.expiresAt != nil && !a.expiresAt.Equal(*b.expiresAt):
		return a.expiresAt.Before(*b.expiresAt)
	case !a.grantedAt.Equal(b.grantedAt):
		return a.grantedAt.Before(b.grantedAt)
	}
	return false // equal keys: the new lot goes after existing ones
}

func (s *orgState) counter(scope, subject string) *counterState {
	k := counterKey{scope, subject}
	c := s.counters[k]
	if c == nil {
		c = &counterState{}
		s.counters[k] = c
	}
	return c
}

func (s *orgState) count(team, user string, creditsUsed, runs int64) {
	for _, k := range []counterKey{{"org", ""}, {"team", team}, {"user", user}} {
		if k.scope != "org" && k.subject == "" {
			continue
		}
		c := s.counter(k.scope, k.subject)
		c.credits = s.add(c.credits, creditsUsed)
		c.runs = s.add(c.runs, runs)
		c.addCredits = s.add(c.addCredits, creditsUsed)
		c.addRuns = s.add(c.addRuns, runs)
	}
}
