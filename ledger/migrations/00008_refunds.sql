-- +goose Up
-- Refunds and disputes of credited payments (see ledger/refund.go and README
-- "Payments: saved cards and auto-recharge"), and cards Stripe detached.

-- A refund or dispute takes credits back with its own entry kind, so history
-- says why the balance went down.
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check CHECK (kind IN ('grant', 'usage', 'hold', 'capture', 'release',
    'expiry', 'restore', 'adjustment', 'debt_repayment', 'rollover', 'refund', 'dispute')) NOT VALID;
ALTER TABLE entries VALIDATE CONSTRAINT entries_kind_check;

-- What was taken back of each payment. refunded_minor is the highest
-- cumulative amount_refunded Stripe reported (so a replayed or late event
-- adds nothing); disputed_minor the sum of its disputes (payment_disputes);
-- taken_back the credits taken back for both, always
-- floor(credits * least(amount_minor, refunded_minor + disputed_minor) / amount_minor).
ALTER TABLE payments
    ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0,
    ADD COLUMN disputed_minor bigint NOT NULL DEFAULT 0,
    ADD COLUMN taken_back     bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_refunded_check CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    ADD CONSTRAINT payments_disputed_check CHECK (disputed_minor >= 0),
    ADD CONSTRAINT payments_taken_back_check CHECK (taken_back >= 0 AND taken_back <= credits);

-- One row per dispute: the dispute id is its idempotency key.
CREATE TABLE payment_disputes (
    dispute_id   text PRIMARY KEY CHECK (dispute_id <> ''),
    org_id       text NOT NULL,
    payment_id   text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    at           timestamptz NOT NULL
);
CREATE INDEX payment_disputes_payment ON payment_disputes (payment_id);

-- Refunds and disputes of payments not credited (yet): Stripe may deliver
-- charge.refunded before the payment_intent.succeeded it reverses. Kept
-- here and applied in the transaction that credits the payment, whichever
-- path credits it. dispute_id is '' for a refund, whose amount_minor is the
-- highest cumulative total seen.
CREATE TABLE pending_reversals (
    payment_id   text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('refund', 'dispute')),
    dispute_id   text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (payment_id, kind, dispute_id),
    CHECK ((kind = 'refund') = (dispute_id = ''))
);

-- Payment methods Stripe reported detached: never saved again (Stripe cannot
-- attach a detached payment method again, so a late payment_method.attached
-- of one is stale). org_id is the org that had it saved, if any.
CREATE TABLE detached_payment_methods (
    payment_method_id text PRIMARY KEY,
    org_id            text,
    detached_at       timestamptz NOT NULL
);

-- +goose Down
-- Fails once refund or dispute entries exist: entries are append-only.
DROP TABLE detached_payment_methods, pending_reversals, payment_disputes;
ALTER TABLE payments DROP COLUMN taken_back, DROP COLUMN disputed_minor, DROP COLUMN refunded_minor;
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check CHECK (kind IN ('grant', 'usage', 'hold', 'capture', 'release',
    'expiry', 'restore', 'adjustment', 'debt_repayment', 'rollover'));
