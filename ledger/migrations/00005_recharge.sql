-- +goose Up
-- Saved cards and automatic recharge (see ledger/recharge.go and README
-- "Payments"). Only Stripe's ids and the card's brand and last four digits
-- are kept: never more card data.

CREATE TABLE payment_methods (
    org_id            text PRIMARY KEY REFERENCES orgs (org_id),
    customer_id       text NOT NULL CHECK (customer_id ~ '^cus_[A-Za-z0-9]{1,250}$'),
    payment_method_id text NOT NULL CHECK (payment_method_id ~ '^(pm|card)_[A-Za-z0-9]{1,250}$'),
    brand             text CHECK (brand ~ '^[a-z_]{1,32}$'),
    last4             text CHECK (last4 ~ '^[0-9]{4}$'),
    updated_at        timestamptz NOT NULL
);

-- An org's auto-recharge: when the balance is at or below threshold, charge
-- the saved card for amount credits, or for what brings the balance to
-- target. monthly_cap bounds what automatic charges spend per cycle, in
-- minor units of the org's currency. A failed charge pauses it (paused,
-- last_error) until the card is updated or an admin enables it again.
CREATE TABLE recharge_settings (
    org_id      text PRIMARY KEY REFERENCES orgs (org_id),
    enabled     boolean NOT NULL,
    threshold   bigint NOT NULL CHECK (threshold >= 0),
    amount      bigint CHECK (amount > 0),
    target      bigint CHECK (target > 0),
    monthly_cap bigint CHECK (monthly_cap > 0),
    paused      boolean NOT NULL DEFAULT false,
    last_error  jsonb,
    updated_at  timestamptz NOT NULL,
    CHECK ((amount IS NULL) <> (target IS NULL)),
    CHECK (target IS NULL OR target > threshold)
);

-- One row per automatic charge. attempt_id is also the Stripe idempotency
-- key, so every retry of the charge is the same charge. At most one attempt
-- per org is pending, ever: the partial unique index says so in the
-- database itself, whatever the code above it does.
CREATE TABLE recharge_attempts (
    org_id            text NOT NULL,
    attempt_id        text NOT NULL CHECK (attempt_id ~ '^rch_[0-9a-f]{24}$'),
    seq               bigint NOT NULL GENERATED ALWAYS AS IDENTITY, -- the order attempts were made
    status            text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    credits           bigint NOT NULL CHECK (credits > 0),
    amount_minor      bigint NOT NULL CHECK (amount_minor > 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    customer_id       text NOT NULL,
    payment_method_id text NOT NULL,
    payment_intent_id text,
    error_code        text,
    decline_code      text,
    error_message     text,
    created_at        timestamptz NOT NULL,
    relay_after       timestamptz NOT NULL,
    finished_at       timestamptz,
    PRIMARY KEY (org_id, attempt_id),
    CHECK ((status = 'pending') = (finished_at IS NULL)),
    CHECK (status <> 'succeeded' OR payment_intent_id IS NOT NULL)
);
CREATE UNIQUE INDEX recharge_attempts_one_in_flight ON recharge_attempts (org_id) WHERE status = 'pending';
CREATE INDEX recharge_attempts_relay ON recharge_attempts (relay_after, org_id, attempt_id) WHERE status = 'pending';
CREATE UNIQUE INDEX recharge_attempts_payment ON recharge_attempts (payment_intent_id) WHERE payment_intent_id IS NOT NULL;

-- The gate every write reads with the org's lock: the threshold while
-- auto-recharge is armed (enabled, not paused, a card saved, no attempt
-- pending); NULL otherwise, so a write below it costs nothing more.
ALTER TABLE balances ADD COLUMN recharge_at bigint;

-- +goose Down
ALTER TABLE balances DROP COLUMN recharge_at;
DROP TABLE recharge_attempts, recharge_settings, payment_methods;
