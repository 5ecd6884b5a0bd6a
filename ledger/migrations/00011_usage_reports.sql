-- +goose Up
-- Usage reports and invoices read an org's usage events by the instant the
-- ledger applied them: [from, to) on recorded_at (see
-- ledger.UsageInRangeSQL). Without this index such a read scans every event
-- of the org (the primary key is (org_id, event_id)). It costs every usage
-- write one more index entry.
CREATE INDEX usage_events_recorded ON usage_events (org_id, recorded_at);

-- +goose Down
DROP INDEX usage_events_recorded;
