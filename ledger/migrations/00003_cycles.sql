-- +goose Up
-- Billing cycles: per-org plan terms, the cycle engine's progress, and what the
-- sweeps page through (see ledger/cycles.go and README "Cycles").

-- Per-org overrides of the catalog plan's terms (enterprise terms); NULL keeps
-- the plan's value. anchor_from is where the current anchor took effect (NULL:
-- at the anchor itself); a changed anchor starts a transition cycle there.
-- pending holds a change of plan, terms or anchor that takes effect at the
-- next boundary (its "from"). These change rarely; the cycle state, which
-- changes every cycle, is in balances, the row every write of the org locks
-- and updates anyway.
ALTER TABLE orgs
    ADD COLUMN monthly_credits bigint CHECK (monthly_credits >= 0),
    ADD COLUMN rollover_months integer CHECK (rollover_months BETWEEN 0 AND 120),
    ADD COLUMN rollover_cap    bigint CHECK (rollover_cap >= 0),
    ADD COLUMN included_runs   bigint CHECK (included_runs >= 0),
    ADD COLUMN anchor_from     timestamptz,
    ADD COLUMN pending         jsonb CHECK (pending IS NULL OR jsonb_typeof(pending) = 'object');

-- next_cycle_at is the start of the next cycle boundary the engine has not
-- performed yet; it only moves forward. cycles_done counts the boundaries
-- performed. next_expiry_at is the soonest expiry among the org's open lots
-- (remaining > 0), kept by every write of the org, so the expiry sweep finds
-- due lots without reading lots. Both change about once a cycle, so the
-- balance updates of ordinary usage stay HOT.
ALTER TABLE balances
    ADD COLUMN next_cycle_at  timestamptz,
    ADD COLUMN cycles_done    integer NOT NULL DEFAULT 0 CHECK (cycles_done >= 0),
    ADD COLUMN next_expiry_at timestamptz;
-- Existing orgs start at their cycle 0: the first sweep grants every cycle
-- since the anchor, once each, in order (level-triggered catch-up).
UPDATE balances b SET next_cycle_at = o.anchor,
       next_expiry_at = (SELECT min(l.expires_at) FROM lots l WHERE l.org_id = b.org_id AND l.remaining > 0)
FROM orgs o WHERE o.org_id = b.org_id;
ALTER TABLE balances ALTER COLUMN next_cycle_at SET NOT NULL;
-- The sweeps page (instant, org_id) > cursor with instant <= now: a range of
-- the index, whether few orgs are due or all of them.
CREATE INDEX balances_next_cycle ON balances (next_cycle_at, org_id);
CREATE INDEX balances_next_expiry ON balances (next_expiry_at, org_id) WHERE next_expiry_at IS NOT NULL;

-- Room on each page for the new versions of updated rows, so that updates
-- that change no indexed column stay HOT (no index writes): a lot's
-- remaining, a balance on usage. At fillfactor 100 a freshly filled page has
-- none, and the first updates of its rows move them to other pages.
ALTER TABLE lots SET (fillfactor = 80);
ALTER TABLE balances SET (fillfactor = 80);

-- The hold sweep pages (expires_at, org_id) of active holds the same way.
DROP INDEX holds_active;
CREATE INDEX holds_active ON holds (expires_at, org_id) WHERE status = 'active';

-- A plan allocation is granted once per org and cycle, ever: its lot key is
-- allocation:<cycle start>. source and key never change, so lot updates
-- (remaining) stay HOT.
CREATE UNIQUE INDEX lots_allocation_once ON lots (org_id, key) WHERE source = 'allocation';

-- Each rollover shows in history: a 'rollover' entry of amount 0 at the
-- boundary, carrying what was carried into the new cycle (after the cap).
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check CHECK (kind IN ('grant', 'usage', 'hold', 'capture', 'release',
    'expiry', 'restore', 'adjustment', 'debt_repayment', 'rollover')) NOT VALID;
ALTER TABLE entries VALIDATE CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD COLUMN carried bigint;
ALTER TABLE entries ADD CONSTRAINT entries_carried_check
    CHECK ((kind = 'rollover') = (carried IS NOT NULL) AND (carried IS NULL OR carried >= 0)
           AND (kind <> 'rollover' OR (lot_delta = 0 AND held_delta = 0 AND debt_delta = 0))) NOT VALID;
ALTER TABLE entries VALIDATE CONSTRAINT entries_carried_check;

-- +goose Down
-- Fails once rollover entries exist: entries are append-only.
ALTER TABLE entries DROP CONSTRAINT entries_carried_check;
ALTER TABLE entries DROP COLUMN carried;
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check CHECK (kind IN ('grant', 'usage', 'hold', 'capture', 'release',
    'expiry', 'restore', 'adjustment', 'debt_repayment'));
DROP INDEX lots_allocation_once;
DROP INDEX holds_active;
CREATE INDEX holds_active ON holds (expires_at) WHERE status = 'active';
ALTER TABLE lots RESET (fillfactor);
ALTER TABLE balances RESET (fillfactor);
DROP INDEX balances_next_expiry;
DROP INDEX balances_next_cycle;
ALTER TABLE balances DROP COLUMN next_cycle_at, DROP COLUMN cycles_done, DROP COLUMN next_expiry_at;
ALTER TABLE orgs
    DROP COLUMN monthly_credits, DROP COLUMN rollover_months, DROP COLUMN rollover_cap, DROP COLUMN included_runs,
    DROP COLUMN anchor_from, DROP COLUMN pending;
