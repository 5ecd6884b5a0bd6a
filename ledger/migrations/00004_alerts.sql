-- +goose Up
-- Alerts: rules, what each rule has fired, the notifications it made and the
-- outbox their deliveries go through (see ledger/alert.go and README "Alerts").

-- Rules of an org. kind decides which of amount, percent_bp and days is set:
--   below          available at or below amount (millicredits)
--   below_percent  available below percent_bp/100 % of the monthly allocation
--   usage_percent  usage this cycle reached percent_bp/100 % of a limit: the
--                  monthly cap and every team and user limit when team is
--                  NULL, that team's limit otherwise
--   depleted       available at or below zero (in debt: the org is paused)
--   runway         at the last 7 days' burn, credits run out within days
-- source 'default' marks the rules an org got from the catalog when created.
CREATE TABLE alert_rules (
    org_id     text NOT NULL REFERENCES orgs (org_id),
    rule_id    bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    kind       text NOT NULL CHECK (kind IN ('below', 'below_percent', 'usage_percent', 'depleted', 'runway')),
    team       text CHECK (team <> ''),
    amount     bigint CHECK (amount > 0),
    percent_bp integer CHECK (percent_bp BETWEEN 1 AND 10000),
    days       integer CHECK (days BETWEEN 1 AND 366),
    source     text NOT NULL CHECK (source IN ('default', 'custom')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, rule_id),
    CHECK ((kind = 'below') = (amount IS NOT NULL)),
    CHECK ((kind IN ('below_percent', 'usage_percent')) = (percent_bp IS NOT NULL)),
    CHECK ((kind = 'runway') = (days IS NOT NULL)),
    CHECK (team IS NULL OR kind = 'usage_percent')
);
-- The same rule twice is one rule.
CREATE UNIQUE INDEX alert_rules_once ON alert_rules
    (org_id, kind, coalesce(team, ''), coalesce(amount, 0), coalesce(percent_bp, 0), coalesce(days, 0));

-- A row per rule and subject that has fired and not re-armed. A balance rule
-- re-arms when credits added lift the balance back above its level (the row
-- is deleted); every rule re-arms when the cycle turns: fired_cycle is the
-- org's next boundary when it fired (balances.next_cycle_at), so a row of an
-- earlier cycle counts as armed. scope and subject say whose usage a
-- usage_percent rule measured ('org' and '' for the org itself and for
-- balance rules).
CREATE TABLE alert_state (
    org_id      text NOT NULL,
    rule_id     bigint NOT NULL,
    scope       text NOT NULL CHECK (scope IN ('org', 'team', 'user')),
    subject     text NOT NULL,
    fired_cycle timestamptz NOT NULL,
    fired_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, rule_id, scope, subject),
    FOREIGN KEY (org_id, rule_id) REFERENCES alert_rules (org_id, rule_id) ON DELETE CASCADE
);

-- The gates every write reads with the org's lock, so that usage needs no
-- extra query unless it may cross a rule: evaluate when available <=
-- alert_fire (the highest level of an armed balance rule) or available >
-- alert_rearm (the lowest level of a fired one), when usage changes a
-- limited counter of an org with usage rules, and when the cycle turns.
ALTER TABLE balances
    ADD COLUMN alert_fire  bigint,
    ADD COLUMN alert_rearm bigint,
    ADD COLUMN alert_usage boolean NOT NULL DEFAULT false;

-- Whether the org has been given the catalog's default rules (at creation;
-- orgs older than this migration get them from `creditd migrate`, once, so
-- an org whose admin removed them does not get them back).
ALTER TABLE orgs ADD COLUMN alert_defaults boolean NOT NULL DEFAULT false;

-- Webhook receivers of an org's alerts. The secret signs (Standard Webhooks),
-- so it is kept as given, not hashed.
CREATE TABLE webhooks (
    org_id     text NOT NULL REFERENCES orgs (org_id),
    webhook_id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    url        text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    secret     text NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
    created_at timestamptz NOT NULL,
    removed_at timestamptz,
    PRIMARY KEY (org_id, webhook_id)
);

-- Notifications: what the host application's dashboard lists, newest first.
-- message_id is the stable id every delivery of it carries (the Standard
-- Webhooks webhook-id, the email Message-ID). key makes event alerts
-- (recharge failed, invoice ready) idempotent; rule alerts have none.
CREATE TABLE notifications (
    org_id          text NOT NULL,
    notification_id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    message_id      text NOT NULL UNIQUE CHECK (message_id ~ '^msg_[0-9a-f]{24}$'),
    kind            text NOT NULL,
    rule_id         bigint,
    scope           text,
    subject         text,
    balance         bigint NOT NULL,
    debt            bigint NOT NULL,
    threshold       bigint,
    percent_bp      integer,
    limit_amount    bigint,
    used            bigint,
    days            integer,
    details         jsonb,
    key             text,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, notification_id)
);
CREATE UNIQUE INDEX notifications_key ON notifications (org_id, key) WHERE key IS NOT NULL;

-- The outbox: one row per notification and receiver, written in the
-- transaction that decided the alert, so a committed alert is never lost. A
-- relay hands pending rows to the queue once relay_after has passed (at
-- first at once; after a handover, when its task should have finished); a
-- delivery marks its row delivered or failed.
CREATE TABLE outbox (
    org_id      text NOT NULL,
    delivery_id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    message_id  text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target      text NOT NULL CHECK (target <> ''),
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL,
    relay_after timestamptz NOT NULL,
    done_at     timestamptz,
    PRIMARY KEY (org_id, delivery_id),
    CHECK ((status = 'pending') = (done_at IS NULL))
);
-- The relay reads the pending rows due to be handed over: an index range,
-- however many rows wait in retries.
CREATE INDEX outbox_relay ON outbox (relay_after, org_id, delivery_id) WHERE status = 'pending';
CREATE INDEX outbox_message ON outbox (message_id);

-- +goose Down
DROP TABLE outbox, notifications, webhooks, alert_state, alert_rules;
ALTER TABLE balances DROP COLUMN alert_fire, DROP COLUMN alert_rearm, DROP COLUMN alert_usage;
ALTER TABLE orgs DROP COLUMN alert_defaults;
