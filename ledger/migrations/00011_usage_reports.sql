-- +goose Up
-- Usage reports (and invoices, which sum usage by the same rule) read an
-- org's usage events by the instant they occurred: [from, to) on
-- occurred_at. Without this index such a read scans every event of the org
-- (the primary key is (org_id, event_id)). It costs every usage write one
-- more index entry.
CREATE INDEX usage_events_occurred ON usage_events (org_id, occurred_at);

-- +goose Down
DROP INDEX usage_events_occurred;
