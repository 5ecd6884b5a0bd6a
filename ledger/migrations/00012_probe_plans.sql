-- +goose NO TRANSACTION
-- +goose Up
-- Every usage write first looks its event up by (org_id, event_id), the
-- primary key. usage_events_recorded (org_id, recorded_at) also serves that
-- lookup (on org_id, filtering event_id), and while the table is new or its
-- statistics are stale the planner cannot tell the two apart: it took the
-- narrower one, which reads every event of the org on each lookup. This
-- index is partial on a condition every row meets (recorded_at is NOT
-- NULL): only a query that bounds recorded_at, as reports and invoices do,
-- implies it and can use it; the lookup can only take the primary key.
CREATE INDEX CONCURRENTLY IF NOT EXISTS usage_events_recorded_range ON usage_events (org_id, recorded_at)
    WHERE recorded_at IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS usage_events_recorded;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS usage_events_recorded ON usage_events (org_id, recorded_at);
DROP INDEX CONCURRENTLY IF EXISTS usage_events_recorded_range;
