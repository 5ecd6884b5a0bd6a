-- +goose Up
-- Verified Stripe webhook events, stored by id before anything acts on them:
-- the endpoint answers fast, a task processes each once, and a delivery of an
-- id seen before changes nothing. org_id is set once the event is matched to
-- an org (metadata org_id, or the org's Stripe customer).
CREATE TABLE stripe_events (
    event_id     text PRIMARY KEY CHECK (event_id ~ '^evt_[A-Za-z0-9_]{1,250}$'),
    type         text NOT NULL,
    org_id       text,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL,
    processed_at timestamptz,
    result       text
);
CREATE INDEX payment_methods_customer ON payment_methods (customer_id);

-- +goose Down
DROP INDEX payment_methods_customer;
DROP TABLE stripe_events;
