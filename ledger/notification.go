package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Notification is one alert as the host application's dashboard lists it and
// as its deliveries carry it.
type Notification struct {
	ID        int64             `json:"id"`
	MessageID string            `json:"message_id"` // the same in every delivery: receivers drop repeats by it
	OrgID     string            `json:"org"`
	Kind      AlertKind         `json:"kind"`
	RuleID    int64             `json:"rule_id,omitempty"`
	Scope     string            `json:"scope,omitempty"`   // usage_percent: org (the monthly cap), team or user
	Subject   string            `json:"subject,omitempty"` // usage_percent: the team or user
	Balance   credits.Credits   `json:"balance"`
	Debt      credits.Credits   `json:"debt"`
	Threshold *credits.Credits  `json:"threshold,omitempty"`
	Percent   *credits.Percent  `json:"percent,omitempty"`
	Limit     *credits.Credits  `json:"limit,omitempty"`
	Used      *credits.Credits  `json:"used,omitempty"`
	Days      int               `json:"days,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// Deliveries are its outbox rows: one per email recipient and webhook.
	Deliveries []DeliveryStatus `json:"deliveries"`
}

// DeliveryStatus is where one delivery of a notification stands.
type DeliveryStatus struct {
	ID        int64      `json:"id"`
	Channel   string     `json:"channel"` // email or webhook
	Target    string     `json:"target"`  // the address, or the webhook's id
	Status    string     `json:"status"`  // pending, delivered or failed
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
}

// Outbox channels and delivery states.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"

	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

type notificationRow struct {
	messageID      string
	kind           AlertKind
	ruleID         int64
	scope, subject string
	balance, debt  int64
	threshold      *int64
	bp             credits.Percent
	limit, used    *int64
	days           int
	details        map[string]string
	key            string
	at             time.Time
}

type outboxRow struct {
	messageID, channel, target string
}

type firedState struct {
	org       string
	key       firedKey
	cycle, at time.Time
}

// newMessageID returns a fresh message id: "msg_" and 24 hex digits.
func newMessageID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("ledger: message id: %v", err)) // crypto/rand does not fail on Linux
	}
	return "msg_" + hex.EncodeToString(b[:])
}

// notify records a notification of the org and an outbox row for each of its
// receivers: every admin email and every webhook. Quiet evaluation (at org
// creation) records what holds without telling anyone.
func (l *Ledger) notify(s *orgState, webhooks []int64, n notificationRow) {
	if s.alertsQuiet {
		return
	}
	n.messageID, n.balance, n.debt, n.at = newMessageID(), s.available, s.debt, s.at
	s.notes = append(s.notes, n)
	for _, addr := range s.org.Emails {
		s.outbox = append(s.outbox, outboxRow{messageID: n.messageID, channel: ChannelEmail, target: addr})
	}
	for _, id := range webhooks {
		s.outbox = append(s.outbox, outboxRow{messageID: n.messageID, channel: ChannelWebhook, target: strconv.FormatInt(id, 10)})
	}
}

const notificationByKeySQL = `SELECT message_id FROM notifications WHERE org_id = $1 AND key = $2`

// RaiseAlert records an event alert (recharge failed, invoice ready) for
// the org and queues its deliveries, in the caller's transaction. key makes
// it idempotent: raising the same key again returns the first message id and
// records nothing.
func (l *Ledger) RaiseAlert(ctx context.Context, tx pgx.Tx, orgID string, kind AlertKind, key string, details map[string]string) (messageID string, err error) {
	if kind != AlertRechargeFailed && kind != AlertInvoiceReady {
		return "", invalid("kind", "must be recharge_failed or invoice_ready, not %q", kind)
	}
	if err := validKey("key", key); err != nil {
		return "", err
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return "", err
	}
	switch err := tx.QueryRow(ctx, notificationByKeySQL, orgID, key).Scan(&messageID); {
	case err == nil:
		return messageID, l.persist(ctx, tx, states)
	case mapError(err) != ErrNotFound:
		return "", mapError(fmt.Errorf("raise alert: %w", err))
	}
	s := states[orgID]
	sets, err := l.loadAlerts(ctx, tx, states, []string{orgID})
	if err != nil {
		return "", err
	}
	l.notify(s, sets[orgID].webhooks, notificationRow{kind: kind, key: key, details: maps.Clone(details)})
	return s.notes[len(s.notes)-1].messageID, l.persist(ctx, tx, states)
}

const deleteAlertStateSQL = `
DELETE FROM alert_state a USING unnest($1::text[], $2::int8[], $3::text[], $4::text[]) AS u(org_id, rule_id, scope, subject)
WHERE a.org_id = u.org_id AND a.rule_id = u.rule_id AND a.scope = u.scope AND a.subject = u.subject`

const upsertAlertStateSQL = `
INSERT INTO alert_state (org_id, rule_id, scope, subject, fired_cycle, fired_at)
SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (org_id, rule_id, scope, subject) DO UPDATE SET fired_cycle = excluded.fired_cycle, fired_at = excluded.fired_at`

const insertNotificationsSQL = `
INSERT INTO notifications (org_id, message_id, kind, rule_id, scope, subject, balance, debt, threshold, percent_bp,
                           limit_amount, used, days, details, key, created_at)
SELECT org_id, message_id, kind, rule_id, scope, subject, balance, debt, threshold, percent_bp,
       limit_amount, used, days, details, key, created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[],
            $10::int4[], $11::int8[], $12::int8[], $13::int4[], $14::jsonb[], $15::text[], $16::timestamptz[])
     WITH ORDINALITY AS u(org_id, message_id, kind, rule_id, scope, subject, balance, debt, threshold, percent_bp,
                          limit_amount, used, days, details, key, created_at, ord)
ORDER BY ord`

const insertOutboxSQL = `
INSERT INTO outbox (org_id, message_id, channel, target, created_at, relay_after)
SELECT org_id, message_id, channel, target, created_at, created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) WITH ORDINALITY
     AS u(org_id, message_id, channel, target, created_at, ord)
ORDER BY ord`

// queueAlertWrites adds to persist's batch what evaluation decided: firings
// re-armed and made, notifications and their outbox rows.
func queueAlertWrites(b *pgx.Batch, states map[string]*orgState, orgIDs []string) {
	var (
		dOrg, dScope, dSubject []string
		dRule                  []int64
		fOrg, fScope, fSubject []string
		fRule                  []int64
		fCycle, fAt            []time.Time

		nOrg, nMsg, nKind             []string
		nRule                         []*int64
		nScope, nSubject, nKey        []*string
		nBalance, nDebt               []int64
		nThreshold, nLimit, nUsed     []*int64
		nBP, nDays                    []*int32
		nDetails                      [][]byte
		nAt                           []time.Time
		oOrg, oMsg, oChannel, oTarget []string
		oAt                           []time.Time
	)
	for _, id := range orgIDs {
		s := states[id]
		for _, f := range s.alertRearmed {
			dOrg, dRule, dScope, dSubject = append(dOrg, id), append(dRule, f.key.rule), append(dScope, f.key.scope), append(dSubject, f.key.subject)
		}
		for _, f := range s.alertFired {
			fOrg, fRule, fScope, fSubject = append(fOrg, id), append(fRule, f.key.rule), append(fScope, f.key.scope), append(fSubject, f.key.subject)
			fCycle, fAt = append(fCycle, f.cycle), append(fAt, f.at)
		}
		for _, n := range s.notes {
			nOrg, nMsg, nKind = append(nOrg, id), append(nMsg, n.messageID), append(nKind, string(n.kind))
			var rule *int64
			if n.ruleID != 0 {
				rule = &n.ruleID
			}
			nRule, nScope, nSubject, nKey = append(nRule, rule), append(nScope, opt(n.scope)), append(nSubject, opt(n.subject)), append(nKey, opt(n.key))
			nBalance, nDebt = append(nBalance, n.balance), append(nDebt, n.debt)
			nThreshold, nLimit, nUsed = append(nThreshold, n.threshold), append(nLimit, n.limit), append(nUsed, n.used)
			nBP, nDays = append(nBP, optInt32(int(n.bp))), append(nDays, optInt32(n.days))
			var details []byte
			if len(n.details) > 0 {
				js, err := json.Marshal(n.details)
				if err != nil {
					panic(fmt.Sprintf("ledger: notification details: %v", err)) // a map of strings
				}
				details = js
			}
			nDetails, nAt = append(nDetails, details), append(nAt, n.at)
		}
		for _, o := range s.outbox {
			oOrg, oMsg, oChannel, oTarget, oAt = append(oOrg, id), append(oMsg, o.messageID), append(oChannel, o.channel), append(oTarget, o.target), append(oAt, s.at)
		}
	}
	if len(dOrg) > 0 {
		b.Queue(deleteAlertStateSQL, dOrg, dRule, dScope, dSubject)
	}
	if len(fOrg) > 0 {
		b.Queue(upsertAlertStateSQL, fOrg, fRule, fScope, fSubject, fCycle, fAt)
	}
	if len(nOrg) > 0 {
		b.Queue(insertNotificationsSQL, nOrg, nMsg, nKind, nRule, nScope, nSubject, nBalance, nDebt, nThreshold, nBP,
			nLimit, nUsed, nDays, nDetails, nKey, nAt)
	}
	if len(oOrg) > 0 {
		b.Queue(insertOutboxSQL, oOrg, oMsg, oChannel, oTarget, oAt)
	}
}

func optInt32(v int) *int32 {
	if v == 0 {
		return nil
	}
	n := int32(v)
	return &n
}

const listNotificationsSQL = `
SELECT ` + notificationSelect + `
FROM notifications n WHERE n.org_id = $1 AND ($2::int8 = 0 OR n.notification_id < $2::int8)
ORDER BY n.notification_id DESC LIMIT $3`

// notificationSelect is the select list of a notification n, in the order
// notificationScan scans it.
const notificationSelect = `n.notification_id, n.message_id, n.kind, coalesce(n.rule_id, 0), coalesce(n.scope, ''),
       coalesce(n.subject, ''), n.balance, n.debt, n.threshold, n.percent_bp, n.limit_amount, n.used,
       coalesce(n.days, 0), n.details, n.created_at`

// notificationScan scans the columns of notificationSelect.
type notificationScan struct {
	n                            Notification
	threshold, limitAmount, used *int64
	bp                           *int32
	details                      []byte
}

func (s *notificationScan) dest() []any {
	n := &s.n
	return []any{&n.ID, &n.MessageID, &n.Kind, &n.RuleID, &n.Scope, &n.Subject, &n.Balance, &n.Debt,
		&s.threshold, &s.bp, &s.limitAmount, &s.used, &n.Days, &s.details, &n.CreatedAt}
}

func (s *notificationScan) finish(orgID string) (Notification, error) {
	n := s.n
	n.OrgID, n.CreatedAt = orgID, n.CreatedAt.UTC()
	n.Threshold, n.Limit, n.Used = creditsPtr(s.threshold), creditsPtr(s.limitAmount), creditsPtr(s.used)
	if s.bp != nil {
		p := credits.Percent(*s.bp)
		n.Percent = &p
	}
	if s.details != nil {
		if err := json.Unmarshal(s.details, &n.Details); err != nil {
			return n, fmt.Errorf("notification %d details: %w", n.ID, err)
		}
	}
	return n, nil
}

const listDeliveriesSQL = `
SELECT message_id, delivery_id, channel, target, status, attempts, coalesce(last_error, ''), done_at
FROM outbox WHERE org_id = $1 AND message_id = ANY($2)
ORDER BY delivery_id`

// MaxNotificationsPage bounds one page of Notifications.
const MaxNotificationsPage = 1000

// Notifications lists an org's notifications, newest first, each with its
// deliveries: limit of them, older than before when before is not 0.
func (l *Ledger) Notifications(ctx context.Context, db DBTX, orgID string, before int64, limit int) ([]Notification, error) {
	if _, err := l.GetOrg(ctx, db, orgID); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxNotificationsPage {
		return nil, invalid("limit", "must be from 1 to %d", MaxNotificationsPage)
	}
	rows, err := db.Query(ctx, listNotificationsSQL, orgID, before, limit)
	if err != nil {
		return nil, mapError(fmt.Errorf("notifications: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Notification, error) {
		var ns notificationScan
		if err := row.Scan(ns.dest()...); err != nil {
			return Notification{}, err
		}
		n, err := ns.finish(orgID)
		n.Deliveries = []DeliveryStatus{}
		return n, err
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("notifications: %w", err))
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	at := make(map[string]int, len(out))
	for i, n := range out {
		ids[i], at[n.MessageID] = n.MessageID, i
	}
	rows, err = db.Query(ctx, listDeliveriesSQL, orgID, ids)
	if err != nil {
		return nil, mapError(fmt.Errorf("deliveries: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var msg string
		var d DeliveryStatus
		if err := rows.Scan(&msg, &d.ID, &d.Channel, &d.Target, &d.Status, &d.Attempts, &d.LastError, &d.DoneAt); err != nil {
			return nil, fmt.Errorf("deliveries: %w", err)
		}
		if d.DoneAt != nil {
			t := d.DoneAt.UTC()
			d.DoneAt = &t
		}
		n := &out[at[msg]]
		n.Deliveries = append(n.Deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("deliveries: %w", err))
	}
	return out, nil
}

// Webhook is an org's receiver of alert webhooks.
type Webhook struct {
	ID        int64     `json:"id"`
	OrgID     string    `json:"org"`
	URL       string    `json:"url"`
	Secret    string    `json:"-"` // signs deliveries; never printed
	CreatedAt time.Time `json:"created_at"`
}

const insertWebhookSQL = `
INSERT INTO webhooks (org_id, url, secret, created_at)
SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM webhooks WHERE org_id = $1 AND removed_at IS NULL) < $5
RETURNING webhook_id`

// AddWebhook adds a receiver of the org's alerts. The caller checks the URL
// and the secret against its delivery policy (notify.ValidateWebhookURL and
// notify.ValidateSecret): the ledger only bounds them. Alerts decided after
// the commit are delivered to it too.
func (l *Ledger) AddWebhook(ctx context.Context, tx pgx.Tx, orgID, url, secret string) (Webhook, error) {
	switch {
	case url == "":
		return Webhook{}, invalid("url", "required")
	case len(url) > 2048:
		return Webhook{}, invalid("url", "longer than 2048 bytes")
	case len(secret) < 16 || len(secret) > 256:
		return Webhook{}, invalid("secret", "must be 16 to 256 bytes")
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return Webhook{}, err
	}
	w := Webhook{OrgID: orgID, URL: url, Secret: secret, CreatedAt: states[orgID].at}
	if err := tx.QueryRow(ctx, insertWebhookSQL, orgID, url, secret, w.CreatedAt, MaxWebhooks).Scan(&w.ID); err != nil {
		if mapError(err) == ErrNotFound {
			return Webhook{}, invalid("url", "org %s has %d webhooks already, the most an org can have", orgID, MaxWebhooks)
		}
		return Webhook{}, mapError(fmt.Errorf("add webhook: %w", err))
	}
	return w, nil
}

const listWebhooksSQL = `
SELECT webhook_id, url, created_at FROM webhooks WHERE org_id = $1 AND removed_at IS NULL ORDER BY webhook_id`

// Webhooks lists the org's receivers (without their secrets).
func (l *Ledger) Webhooks(ctx context.Context, db DBTX, orgID string) ([]Webhook, error) {
	if _, err := l.GetOrg(ctx, db, orgID); err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, listWebhooksSQL, orgID)
	if err != nil {
		return nil, mapError(fmt.Errorf("webhooks: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Webhook, error) {
		w := Webhook{OrgID: orgID}
		err := row.Scan(&w.ID, &w.URL, &w.CreatedAt)
		w.CreatedAt = w.CreatedAt.UTC()
		return w, err
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("webhooks: %w", err))
	}
	return out, nil
}

const removeWebhookSQL = `UPDATE webhooks SET removed_at = $3 WHERE org_id = $1 AND webhook_id = $2 AND removed_at IS NULL`

// RemoveWebhook stops new alerts from going to the receiver. Deliveries
// already in the outbox are still attempted; ErrNotFound when there is no
// such receiver.
func (l *Ledger) RemoveWebhook(ctx context.Context, tx pgx.Tx, orgID string, id int64) error {
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, removeWebhookSQL, orgID, id, states[orgID].at)
	if err != nil {
		return mapError(fmt.Errorf("remove webhook: %w", err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %d of org %s: %w", id, orgID, ErrNotFound)
	}
	return nil
}

// DeliveryRef names one outbox row.
type DeliveryRef struct {
	OrgID string `json:"org_id"`
	ID    int64  `json:"delivery_id"`
}

// MaxRelayBatch bounds the outbox rows one relay pass claims.
const MaxRelayBatch = 1000

// Pending rows never handed over, or handed over longer than the stale time
// ago and still not done (their task was lost: Redis restarted without its
// data, or a worker died in its last attempt). SKIP LOCKED lets relays of
// several workers claim disjoint rows.
const claimDeliveriesSQL = `
UPDATE outbox o SET relay_after = $2
FROM (SELECT org_id, delivery_id FROM outbox
      WHERE status = 'pending' AND relay_after <= $1
      ORDER BY relay_after, org_id, delivery_id LIMIT $3
      FOR UPDATE SKIP LOCKED) c
WHERE o.org_id = c.org_id AND o.delivery_id = c.delivery_id
RETURNING o.org_id, o.delivery_id`

// ClaimDeliveries marks up to limit pending deliveries as handed to the
// queue at now and returns them. A claimed delivery still pending stale
// after its claim is claimed again: handing it over twice is harmless, as a
// delivery that is done is not sent again.
func (l *Ledger) ClaimDeliveries(ctx context.Context, tx pgx.Tx, now time.Time, stale time.Duration, limit int) ([]DeliveryRef, error) {
	return claim[DeliveryRef](ctx, tx, claimDeliveriesSQL, "deliveries", now, stale, limit)
}

// claim runs one of the relay's claims (claimDeliveriesSQL,
// claimRechargesSQL): up to limit pending rows due at now, due again stale
// later.
func claim[R any](ctx context.Context, tx pgx.Tx, query, what string, now time.Time, stale time.Duration, limit int) ([]R, error) {
	if limit <= 0 || limit > MaxRelayBatch {
		return nil, invalid("limit", "must be from 1 to %d", MaxRelayBatch)
	}
	rows, err := tx.Query(ctx, query, now, now.Add(stale), limit)
	if err != nil {
		return nil, mapError(fmt.Errorf("claim %s: %w", what, err))
	}
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[R])
	if err != nil {
		return nil, mapError(fmt.Errorf("claim %s: %w", what, err))
	}
	return refs, nil
}

// Delivery is one outbox row with what sending it needs.
type Delivery struct {
	DeliveryStatus
	OrgID        string
	Notification Notification
	// The webhook's URL and secret, for webhook deliveries; Removed when
	// the receiver was removed after the alert was decided.
	URL, Secret string
}

const deliverySQL = `
SELECT o.delivery_id, o.channel, o.target, o.status, o.attempts, coalesce(o.last_error, ''), o.done_at,
       ` + notificationSelect + `, coalesce(w.url, ''), coalesce(w.secret, '')
FROM outbox o
JOIN notifications n ON n.message_id = o.message_id AND n.org_id = o.org_id
LEFT JOIN webhooks w ON o.channel = 'webhook' AND w.org_id = o.org_id AND w.webhook_id::text = o.target
WHERE o.org_id = $1 AND o.delivery_id = $2`

// Delivery reads one outbox row with its notification; ErrNotFound when it
// does not exist.
func (l *Ledger) Delivery(ctx context.Context, db DBTX, ref DeliveryRef) (Delivery, error) {
	d := Delivery{OrgID: ref.OrgID}
	var ns notificationScan
	dest := append([]any{&d.ID, &d.Channel, &d.Target, &d.Status, &d.Attempts, &d.LastError, &d.DoneAt}, ns.dest()...)
	if err := db.QueryRow(ctx, deliverySQL, ref.OrgID, ref.ID).Scan(append(dest, &d.URL, &d.Secret)...); err != nil {
		return Delivery{}, fmt.Errorf("delivery %d of org %s: %w", ref.ID, ref.OrgID, mapError(err))
	}
	n, err := ns.finish(ref.OrgID)
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %d of org %s: %w", ref.ID, ref.OrgID, err)
	}
	d.Notification = n
	return d, nil
}

// MaxDeliveryError bounds the error text kept on an outbox row.
const MaxDeliveryError = 1000

const finishDeliverySQL = `
UPDATE outbox SET status = $3, done_at = CASE WHEN $3 = 'pending' THEN NULL ELSE $4::timestamptz END,
                  attempts = attempts + 1, last_error = nullif($5, '')
WHERE org_id = $1 AND delivery_id = $2 AND status = 'pending'`

// RecordAttempt notes one attempt at a pending delivery: status is
// DeliveryDelivered, DeliveryFailed (given up) or DeliveryPending (to be
// tried again), errText what went wrong. It reports whether the row was
// still pending: false means another attempt finished it first.
func (l *Ledger) RecordAttempt(ctx context.Context, db DBTX, ref DeliveryRef, status, errText string) (bool, error) {
	if status != DeliveryDelivered && status != DeliveryFailed && status != DeliveryPending {
		return false, invalid("status", "must be delivered, failed or pending, not %q", status)
	}
	if len(errText) > MaxDeliveryError {
		errText = strings.ToValidUTF8(errText[:MaxDeliveryError], "")
	}
	tag, err := db.Exec(ctx, finishDeliverySQL, ref.OrgID, ref.ID, status, l.now(), errText)
	if err != nil {
		return false, mapError(fmt.Errorf("delivery %d of org %s: %w", ref.ID, ref.OrgID, err))
	}
	return tag.RowsAffected() == 1, nil
}
