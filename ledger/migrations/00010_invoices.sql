-- +goose Up
-- Monthly invoices (see ledger/invoices.go and README "Invoices"): one per org
-- and calendar month in the org's time zone, ever; the primary key says so in
-- the database itself, whatever the sweeps above it do.
CREATE TABLE invoices (
    org_id            text NOT NULL,
    period            text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL CHECK (period_end > period_start),
    status            text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void')),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    due_minor         bigint NOT NULL CHECK (due_minor >= 0),
    opening_balance   bigint NOT NULL,
    closing_balance   bigint NOT NULL,
    closing_debt      bigint NOT NULL CHECK (closing_debt >= 0),
    -- The last entry of the org dated before period_end (0: none): the next
    -- month's invoice reads the entries after it, so no month re-reads the
    -- whole history.
    through_entry_id  bigint NOT NULL CHECK (through_entry_id >= 0),
    document          jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    stripe_invoice_id text CHECK (stripe_invoice_id ~ '^in_[A-Za-z0-9]{1,250}$'),
    payment_error     text,
    created_at        timestamptz NOT NULL,
    paid_at           timestamptz,
    PRIMARY KEY (org_id, period),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
CREATE UNIQUE INDEX invoices_stripe ON invoices (stripe_invoice_id) WHERE stripe_invoice_id IS NOT NULL;

-- auto_pay: the org's invoices are charged to its saved card through a
-- Stripe invoice. price_minor: a monthly price of its own (enterprise terms),
-- in the org's currency, instead of the plan's. next_invoice_at: the end of
-- the first month not invoiced yet; the invoice sweep pages (instant, org_id)
-- like the cycle sweeps. A new org's first month is the month it was created
-- in, in its zone (set by the trigger, so every way of creating an org gets it).
ALTER TABLE orgs
    ADD COLUMN auto_pay        boolean NOT NULL DEFAULT false,
    ADD COLUMN price_minor     bigint CHECK (price_minor >= 0),
    ADD COLUMN next_invoice_at timestamptz;

-- +goose StatementBegin
CREATE FUNCTION orgs_first_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_invoice_at IS NULL THEN
        NEW.next_invoice_at := (date_trunc('month', NEW.created_at AT TIME ZONE NEW.time_zone) + interval '1 month')
                               AT TIME ZONE NEW.time_zone;
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER orgs_first_invoice BEFORE INSERT ON orgs FOR EACH ROW EXECUTE FUNCTION orgs_first_invoice();

UPDATE orgs SET next_invoice_at = (date_trunc('month', created_at AT TIME ZONE time_zone) + interval '1 month')
                                  AT TIME ZONE time_zone;
ALTER TABLE orgs ALTER COLUMN next_invoice_at SET NOT NULL;
CREATE INDEX orgs_next_invoice ON orgs (next_invoice_at, org_id);

-- +goose Down
DROP INDEX orgs_next_invoice;
DROP TRIGGER orgs_first_invoice ON orgs;
DROP FUNCTION orgs_first_invoice();
ALTER TABLE orgs DROP COLUMN next_invoice_at, DROP COLUMN price_minor, DROP COLUMN auto_pay;
DROP TABLE invoices;
