-- +goose Up
-- Every payment credited to an org (a one-time purchase or an automatic
-- recharge), with what was paid: the lot says how many credits it bought,
-- this row says for how much money, so invoices can list purchases and
-- recharges in the org's currency, and refunds can take back the part of the
-- credits that a partial refund pays back. Written in the transaction that
-- grants the lot; payment_id is the Stripe PaymentIntent, credited once ever.
CREATE TABLE payments (
    org_id       text NOT NULL,
    payment_id   text NOT NULL CHECK (payment_id <> ''),
    kind         text NOT NULL CHECK (kind IN ('purchase', 'recharge')),
    lot_id       bigint NOT NULL,
    credits      bigint NOT NULL CHECK (credits > 0),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    paid_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, payment_id)
);
CREATE UNIQUE INDEX payments_payment ON payments (payment_id);
CREATE INDEX payments_paid ON payments (org_id, paid_at);

-- +goose Down
DROP TABLE payments;
