package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The sequence is looked up once, not for every id: pg_get_serial_sequence
// per row made 1,000 ids take 10 ms instead of 1.5.
const nextLotIDsSQL = `
SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence('lots', 'lot_id')::regclass AS seq OFFSET 0) s,
       generate_series(1, $1)`

const insertOpsSQL = `
INSERT INTO operations (org_id, key, kind, request_hash, result, at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[], $6::timestamptz[])`

const insertLotsSQL = `
INSERT INTO lots (org_id, lot_id, source, amount, remaining, granted_at, expires_at, key)
SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::timestamptz[], $7::timestamptz[], $8::text[])`

const updateLotsSQL = `
UPDATE lots SET remaining = u.remaining
FROM unnest($1::text[], $2::int8[], $3::int8[]) AS u(org_id, lot_id, remaining)
WHERE lots.org_id = u.org_id AND lots.lot_id = u.lot_id`

const insertEntriesSQL = `
INSERT INTO entries (org_id, kind, amount, balance_after, lot_id, lot_delta, hold_id, held_delta, debt_delta,
                     key, event_id, team, user_id, feature, task_id, payment_id, at, carried)
SELECT org_id, kind, amount, balance_after, lot_id, lot_delta, hold_id, held_delta, debt_delta,
       key, event_id, team, user_id, feature, task_id, payment_id, at, carried
FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::text[], $8::int8[], $9::int8[],
            $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::timestamptz[],
            $18::int8[])
     WITH ORDINALITY AS u(org_id, kind, amount, balance_after, lot_id, lot_delta, hold_id, held_delta, debt_delta,
                          key, event_id, team, user_id, feature, task_id, payment_id, at, carried, ord)
ORDER BY ord`

const insertUsageSQL = `
INSERT INTO usage_events (org_id, event_id, status, reason, feature, units, runs, overage_runs, amount, team, user_id,
                          occurred_at, recorded_at, cycle_start, metadata, debt, balance_after, request_hash)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[],
                     $9::int8[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::jsonb[],
                     $16::int8[], $17::int8[], $18::bytea[])`

const upsertCountersSQL = `
INSERT INTO cycle_usage (org_id, cycle_start, scope, subject, credits, runs)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::int8[], $6::int8[])
ON CONFLICT (org_id, cycle_start, scope, subject) DO UPDATE
SET credits = cycle_usage.credits + excluded.credits, runs = cycle_usage.runs + excluded.runs`

const upsertHoldsSQL = `
INSERT INTO holds (org_id, hold_id, amount, status, captured, feature, team, user_id, created_at, expires_at, closed_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[],
                     $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])
ON CONFLICT (org_id, hold_id) DO UPDATE
SET status = excluded.status, captured = excluded.captured, closed_at = excluded.closed_at`

const updateBalancesSQL = `
UPDATE balances SET available = u.available, held = u.held, debt = u.debt, last_at = u.last_at,
                    next_expiry_at = u.next_expiry_at, next_cycle_at = u.next_cycle_at, cycles_done = u.cycles_done,
                    alert_fire = u.alert_fire, alert_rearm = u.alert_rearm, alert_usage = u.alert_usage,
                    recharge_at = u.recharge_at
FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[],
            $8::int4[], $9::int8[], $10::int8[], $11::bool[], $12::int8[])
     AS u(org_id, available, held, debt, last_at, next_expiry_at, next_cycle_at, cycles_done, alert_fire, alert_rearm,
          alert_usage, recharge_at)
WHERE balances.org_id = u.org_id`

// persist evaluates the alert rules the changes may cross, then writes what
// the operations changed, for all orgs at once, in one pipelined batch of
// set-based statements.
func (l *Ledger) persist(ctx context.Context, tx pgx.Tx, states map[string]*orgState) error {
	orgIDs := make([]string, 0, len(states))
	for id := range states {
		orgIDs = append(orgIDs, id)
	}
	slices.Sort(orgIDs)

	for _, id := range orgIDs {
		if states[id].overflow {
			return invalid("amount", "org %s: the balance or a usage total would overflow", id)
		}
	}
	if err := assignLotIDs(ctx, tx, states, orgIDs); err != nil {
		return err
	}
	if err := l.evaluateAlerts(ctx, tx, states, orgIDs); err != nil {
		return err
	}
	if err := l.triggerRecharges(ctx, tx, states, orgIDs); err != nil {
		return err
	}

	var (
		opOrg, opKey, opKind []string
		opHash               [][]byte
		opResult             [][]byte
		opAt                 []time.Time

		nlOrg, nlSource, nlKey []string
		nlID, nlAmount, nlRem  []int64
		nlGranted              []time.Time
		nlExpires              []*time.Time

		ulOrg       []string
		ulID, ulRem []int64

		e entryColumns

		uOrg, uEvent, uStatus                 []string
		uReason, uFeature, uTeam, uUser       []*string
		uUnits, uRuns                         []*int64
		uOverage, uAmount                     []int64
		uOccurred, uRecorded, uCycle          []time.Time
		uMeta, uHash                          [][]byte
		uDebt, uBalance                       []int64
		cOrg, cScope, cSubject                []string
		cCycle                                []time.Time
		cCredits, cRuns                       []int64
		hOrg, hID, hStatus, hFeat, hTeam, hUs []string
		hAmount                               []int64
		hCaptured                             []*int64
		hCreated, hExpires                    []time.Time
		hClosed                               []*time.Time

		bOrg                 []string
		bAvail, bHeld, bDebt []int64
		bLast                []time.Time
		bNextExpiry          []*time.Time
		bNextCycle           []time.Time
		bCyclesDone          []int32
		bAlertFire, bRearm   []*int64
		bAlertUsage          []bool
		bRechargeAt          []*int64
		changedBalance       bool
	)
	usageRows := 0
	for _, s := range states {
		usageRows += len(s.events)
	}
	copyUsage := usageRows >= copyRowsMin
	for _, id := range orgIDs {
		s := states[id]
		for _, op := range s.newOps {
			opOrg, opKey, opKind = append(opOrg, id), append(opKey, op.key), append(opKind, op.kind)
			opHash, opResult, opAt = append(opHash, op.hash), append(opResult, op.result), append(opAt, s.at)
		}
		for _, lot := range s.lots {
			switch {
			case lot.isNew:
				nlOrg, nlID, nlSource = append(nlOrg, id), append(nlID, lot.id), append(nlSource, lot.source)
				nlAmount, nlRem, nlKey = append(nlAmount, lot.amount), append(nlRem, lot.remaining), append(nlKey, lot.key)
				nlGranted, nlExpires = append(nlGranted, lot.grantedAt), append(nlExpires, lot.expiresAt)
			case lot.dirty:
				ulOrg, ulID, ulRem = append(ulOrg, id), append(ulID, lot.id), append(ulRem, lot.remaining)
			}
		}
		for _, en := range s.entries {
			e.add(id, en)
		}
		if !copyUsage {
			for _, u := range s.events {
				uOrg, uEvent, uStatus = append(uOrg, id), append(uEvent, u.eventID), append(uStatus, u.status)
				uReason, uFeature, uTeam, uUser = append(uReason, u.reason), append(uFeature, u.feature), append(uTeam, u.team), append(uUser, u.user)
				uUnits, uRuns, uOverage, uAmount = append(uUnits, u.units), append(uRuns, u.runs), append(uOverage, u.overageRuns), append(uAmount, u.amount)
				uOccurred, uRecorded, uCycle = append(uOccurred, u.occurredAt), append(uRecorded, s.at), append(uCycle, s.cycle.Start)
				uMeta, uHash = append(uMeta, u.metadata), append(uHash, u.hash)
				uDebt, uBalance = append(uDebt, u.debt), append(uBalance, u.balance)
			}
		}
		for k, c := range s.counters {
			if c.addCredits == 0 && c.addRuns == 0 {
				continue
			}
			cOrg, cCycle, cScope, cSubject = append(cOrg, id), append(cCycle, s.cycle.Start), append(cScope, k.scope), append(cSubject, k.subject)
			cCredits, cRuns = append(cCredits, c.addCredits), append(cRuns, c.addRuns)
		}
		for _, h := range s.holds {
			if !h.isNew && !h.dirty {
				continue
			}
			hOrg, hID, hAmount, hStatus = append(hOrg, id), append(hID, h.id), append(hAmount, h.amount), append(hStatus, h.status)
			hCaptured, hFeat, hTeam, hUs = append(hCaptured, h.captured), append(hFeat, h.feature), append(hTeam, h.team), append(hUs, h.user)
			hCreated, hExpires, hClosed = append(hCreated, h.createdAt), append(hExpires, h.expiresAt), append(hClosed, h.closedAt)
		}
		if len(s.entries) > 0 || s.cyclesDirty || s.alertsDirty || len(s.recharges) > 0 {
			last := s.lastAt
			if len(s.entries) > 0 {
				last = s.entries[len(s.entries)-1].at
			}
			bOrg, bAvail, bHeld, bDebt = append(bOrg, id), append(bAvail, s.available), append(bHeld, s.held), append(bDebt, s.debt)
			bLast, bNextExpiry = append(bLast, last), append(bNextExpiry, s.nextExpiry())
			bNextCycle, bCyclesDone = append(bNextCycle, s.org.NextCycleAt), append(bCyclesDone, int32(s.org.CyclesDone))
			bAlertFire, bRearm, bAlertUsage = append(bAlertFire, s.alertFire), append(bRearm, s.alertRearm), append(bAlertUsage, s.alertUsage)
			bRechargeAt = append(bRechargeAt, s.rechargeAt)
			changedBalance = true
		}
	}

	b := &pgx.Batch{}
	if len(opOrg) > 0 {
		b.Queue(insertOpsSQL, opOrg, opKey, opKind, opHash, opResult, opAt)
	}
	if len(nlOrg) > 0 {
		b.Queue(insertLotsSQL, nlOrg, nlID, nlSource, nlAmount, nlRem, nlGranted, nlExpires, nlKey)
	}
	if len(ulOrg) > 0 {
		b.Queue(updateLotsSQL, ulOrg, ulID, ulRem)
	}
	if n := len(e.org); n > 0 && n < copyRowsMin {
		b.Queue(insertEntriesSQL, e.args()...)
	}
	if len(uOrg) > 0 {
		b.Queue(insertUsageSQL, uOrg, uEvent, uStatus, uReason, uFeature, uUnits, uRuns, uOverage, uAmount,
			uTeam, uUser, uOccurred, uRecorded, uCycle, uMeta, uDebt, uBalance, uHash)
	}
	if len(cOrg) > 0 {
		b.Queue(upsertCountersSQL, cOrg, cCycle, cScope, cSubject, cCredits, cRuns)
	}
	if len(hOrg) > 0 {
		b.Queue(upsertHoldsSQL, hOrg, hID, hAmount, hStatus, hCaptured, nullables(hFeat), nullables(hTeam), nullables(hUs),
			hCreated, hExpires, hClosed)
	}
	if changedBalance {
		b.Queue(updateBalancesSQL, bOrg, bAvail, bHeld, bDebt, bLast, bNextExpiry, bNextCycle, bCyclesDone,
			bAlertFire, bRearm, bAlertUsage, bRechargeAt)
	}
	queueOrgUpdates(b, states, orgIDs)
	queueAlertWrites(b, states, orgIDs)
	queueRechargeWrites(b, states, orgIDs)
	// The batch may be empty while the COPYs are not: a large batch of
	// events that were all rejected writes only their usage rows.
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write ledger: %w", err)
		}
	}
	if copyUsage {
		if err := copyUsageRows(ctx, tx, states, orgIDs, usageRows); err != nil {
			return err
		}
	}
	if len(e.org) >= copyRowsMin {
		return e.copy(ctx, tx)
	}
	return nil
}

// assignLotIDs replaces the placeholder ids of new lots with ids from the
// lots sequence, in the lots and in the entries that name them.
func assignLotIDs(ctx context.Context, tx pgx.Tx, states map[string]*orgState, orgIDs []string) error {
	n := 0
	for _, s := range states {
		n += int(-s.newLotIDs)
	}
	if n == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, nextLotIDsSQL, n)
	if err != nil {
		return fmt.Errorf("allocate lot ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("allocate lot ids: %w", err)
	}
	next := 0
	for _, org := range orgIDs {
		s := states[org]
		remap := map[int64]int64{}
		for _, lot := range s.lots {
			if lot.id < 0 {
				remap[lot.id] = ids[next]
				lot.id = ids[next]
				next++
			}
		}
		for i := range s.entries {
			if p := s.entries[i].lotID; p != nil && *p < 0 {
				v := remap[*p]
				s.entries[i].lotID = &v
			}
		}
		s.newLotIDs = 0
	}
	return nil
}

type entryColumns struct {
	org, kind, key                                          []string
	amount, balanceAfter, lotDelta, heldDelta, debtDelta    []int64
	lotID                                                   []*int64
	holdID, eventID, team, user, feature, taskID, paymentID []*string
	at                                                      []time.Time
	carried                                                 []*int64
}

func (c *entryColumns) add(org string, e entryRow) {
	c.org, c.kind, c.key = append(c.org, org), append(c.kind, e.kind), append(c.key, e.key)
	c.amount, c.balanceAfter = append(c.amount, e.amount), append(c.balanceAfter, e.balanceAfter)
	c.lotID, c.lotDelta = append(c.lotID, e.lotID), append(c.lotDelta, e.lotDelta)
	c.holdID, c.heldDelta, c.debtDelta = append(c.holdID, e.holdID), append(c.heldDelta, e.heldDelta), append(c.debtDelta, e.debtDelta)
	c.eventID, c.team, c.user = append(c.eventID, e.eventID), append(c.team, e.team), append(c.user, e.user)
	c.feature, c.taskID, c.paymentID = append(c.feature, e.feature), append(c.taskID, e.taskID), append(c.paymentID, e.paymentID)
	c.at, c.carried = append(c.at, e.at), append(c.carried, e.carried)
}

func (c *entryColumns) args() []any {
	return []any{c.org, c.kind, c.amount, c.balanceAfter, c.lotID, c.lotDelta, c.holdID, c.heldDelta, c.debtDelta,
		c.key, c.eventID, c.team, c.user, c.feature, c.taskID, c.paymentID, c.at, c.carried}
}

// opt turns "" into NULL.
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullables(ss []string) []*string {
	out := make([]*string, len(ss))
	for i, s := range ss {
		out[i] = opt(s)
	}
	return out
}
