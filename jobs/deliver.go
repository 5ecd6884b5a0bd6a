package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/notify"
)

// Alert delivery: the ledger writes each alert's deliveries to its outbox in
// the transaction that decided the alert; the Relay hands pending rows to the
// queue as notify:deliver tasks; the DeliverHandler sends one and marks it.
// A delivery that was sent but not marked (a crash in between) is sent again
// with the same message id, which receivers use to drop the repeat.
const TypeDeliver = "notify:deliver"

// DeliverPayloadVersion is the version this code writes.
const DeliverPayloadVersion = 1

// DeliverMaxRetry bounds the attempts at one delivery: with RetryDelay's
// doubling capped at 10 minutes, about two hours of trying.
const DeliverMaxRetry = 16

// DeliverPayload names one outbox row.
type DeliverPayload struct {
	Version    int    `json:"v"`
	OrgID      string `json:"org_id"`
	DeliveryID int64  `json:"delivery_id"`
}

func (p DeliverPayload) validate() error {
	if p.Version < 1 || p.Version > DeliverPayloadVersion {
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, DeliverPayloadVersion)}
	}
	if p.OrgID == "" {
		return &PayloadError{Field: "org_id", Reason: "required"}
	}
	if p.DeliveryID < 1 {
		return &PayloadError{Field: "delivery_id", Reason: "must be positive"}
	}
	return nil
}

// DeliverTaskID is the task id of a delivery: one task per outbox row while
// it is in Redis.
func DeliverTaskID(ref ledger.DeliveryRef) string {
	return TypeDeliver + ":" + ref.OrgID + ":" + strconv.FormatInt(ref.ID, 10)
}

// NewDeliverTask builds the task that sends one outbox row.
func NewDeliverTask(ref ledger.DeliveryRef) (*asynq.Task, error) {
	p := DeliverPayload{Version: DeliverPayloadVersion, OrgID: ref.OrgID, DeliveryID: ref.ID}
	if err := p.validate(); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeDeliver, data, asynq.Queue(QueueNotify), asynq.TaskID(DeliverTaskID(ref)),
		asynq.MaxRetry(DeliverMaxRetry), asynq.Timeout(time.Minute)), nil
}

// EmailSender sends one rendered alert to one address (notify.EmailSender).
type EmailSender interface {
	Send(ctx context.Context, to, msgID string, r notify.Rendered) error
}

// WebhookSender posts one signed alert body (notify.WebhookSender).
type WebhookSender interface {
	Send(ctx context.Context, url, secret, msgID string, body []byte) error
}

// DeliverHandler sends outbox rows.
type DeliverHandler struct {
	Ledger *ledger.Ledger
	DB     ledger.DBTX
	// Email is nil when SMTP is not configured: email deliveries then fail
	// at once with a reason that says so (the stored notification stays).
	Email    EmailSender
	Webhook  WebhookSender
	LinkBase string // CREDITD_LINK_BASE, for the links in messages
}

// ProcessTask sends the delivery unless it is done already, and records the
// attempt. Transient failures are retried with backoff; a refusal that
// retrying cannot change (a 4xx from a webhook, a 5xx from SMTP) and the
// last retry mark the delivery failed.
func (h *DeliverHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p DeliverPayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	ref := ledger.DeliveryRef{OrgID: p.OrgID, ID: p.DeliveryID}
	d, err := h.Ledger.Delivery(ctx, h.DB, ref)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return permanent(&PayloadError{Field: "delivery_id", Reason: fmt.Sprintf("no delivery %d of org %s", p.DeliveryID, p.OrgID)})
	case err != nil:
		return err
	case d.Status != ledger.DeliveryPending:
		return nil // done already: a second task for it, or a re-run from the UI
	}
	sendErr := h.send(ctx, d)
	status := ledger.DeliveryDelivered
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	switch {
	case sendErr == nil:
	case notify.IsPermanent(sendErr) || retried >= maxRetry:
		status = ledger.DeliveryFailed
	default:
		status = ledger.DeliveryPending
	}
	errText := ""
	if sendErr != nil {
		errText = sendErr.Error()
	}
	if _, err := h.Ledger.RecordAttempt(ctx, h.DB, ref, status, errText); err != nil {
		if sendErr == nil {
			// Sent but not marked: the retry sends it again with the same
			// message id, which the receiver drops.
			return fmt.Errorf("delivery %d of org %s sent, not recorded: %w", ref.ID, ref.OrgID, err)
		}
		return errors.Join(sendErr, err)
	}
	switch status {
	case ledger.DeliveryFailed:
		return permanent(fmt.Errorf("%s delivery %d of org %s failed: %w", d.Channel, ref.ID, ref.OrgID, sendErr))
	case ledger.DeliveryPending:
		return fmt.Errorf("%s delivery %d of org %s: %w", d.Channel, ref.ID, ref.OrgID, sendErr)
	}
	return nil
}

// errEmailOff is the reason of email deliveries when SMTP is not configured.
var errEmailOff = &notify.DeliveryError{Permanent: true, Err: errors.New("email is not configured: set SMTP_URL and SMTP_FROM")}

func (h *DeliverHandler) send(ctx context.Context, d ledger.Delivery) error {
	alert := AlertMessage(d.Notification)
	switch d.Channel {
	case ledger.ChannelEmail:
		if h.Email == nil {
			return errEmailOff
		}
		return h.Email.Send(ctx, d.Target, alert.ID, notify.Render(alert, h.LinkBase))
	case ledger.ChannelWebhook:
		if h.Webhook == nil || d.URL == "" {
			return &notify.DeliveryError{Permanent: true, Err: errors.New("the webhook receiver is gone")}
		}
		body, err := notify.WebhookBody(alert, h.LinkBase)
		if err != nil {
			return &notify.DeliveryError{Permanent: true, Err: err}
		}
		return h.Webhook.Send(ctx, d.URL, d.Secret, alert.ID, body)
	}
	return &notify.DeliveryError{Permanent: true, Err: fmt.Errorf("unknown channel %q", d.Channel)}
}

// AlertMessage turns a stored notification into the message notify renders
// and sends.
func AlertMessage(n ledger.Notification) notify.Alert {
	a := notify.Alert{
		ID: n.MessageID, OrgID: n.OrgID, Kind: string(n.Kind), RuleID: n.RuleID, Scope: n.Scope, Subject: n.Subject,
		Balance: n.Balance, Debt: n.Debt, Threshold: n.Threshold, Limit: n.Limit, Used: n.Used, RunwayDays: n.Days,
		Details: n.Details, CreatedAt: n.CreatedAt,
	}
	if n.Scope == "team" {
		a.Team = n.Subject
	}
	if n.Percent != nil {
		a.PercentBP = int(*n.Percent)
	}
	return a
}

// Relay hands the outbox's pending deliveries, and pending recharge
// attempts, to the queue. Every worker
// runs one: claims skip rows another relay holds, and a delivery handed over
// twice is sent once (its task id, then its outbox status).
type Relay struct {
	Ledger *ledger.Ledger
	DB     ledger.TxBeginner
	// Client enqueues the tasks. A task of the same id still in Redis is
	// left to run; one asynq archived while its row is still pending (the
	// worker died in the last attempt, or could not record it) is replaced
	// by a fresh task, as Client.enqueue does for every task.
	Client   *Client
	Clock    ledger.Clock  // SystemClock when nil
	Interval time.Duration // between passes when the outbox is idle; 500 ms when 0
	// Stale is how long a handed-over delivery may stay pending before it is
	// handed over again (its task may have been lost with Redis' data);
	// 10 minutes when 0. Longer than a task's retries take to start again.
	Stale time.Duration
	Log   *slog.Logger // discarded when nil
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n, err := r.Pass(ctx)
		wait := interval
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("outbox relay", "err", err)
		case n == ledger.MaxRelayBatch:
			wait = 0 // more are waiting
		}
		timer.Reset(wait)
	}
}

// Pass claims one batch of pending deliveries and one of pending recharge
// attempts and enqueues their tasks, in one transaction: if Redis refuses,
// the claims roll back and the next pass tries again. It returns the larger
// of the two counts.
func (r *Relay) Pass(ctx context.Context) (int, error) {
	clock := r.Clock
	if clock == nil {
		clock = ledger.SystemClock
	}
	stale := r.Stale
	if stale <= 0 {
		stale = 10 * time.Minute
	}
	n := 0
	err := ledger.WithTx(ctx, r.DB, func(tx pgx.Tx) error {
		refs, err := r.Ledger.ClaimDeliveries(ctx, tx, clock.Now(), stale, ledger.MaxRelayBatch)
		if err != nil {
			return err
		}
		for _, ref := range refs {
			task, err := NewDeliverTask(ref)
			if err != nil {
				return err
			}
			if err := r.Client.enqueue(ctx, task, QueueNotify, DeliverTaskID(ref)); err != nil {
				return fmt.Errorf("hand over delivery %d of org %s: %w", ref.ID, ref.OrgID, err)
			}
		}
		charges, err := r.Ledger.ClaimRecharges(ctx, tx, clock.Now(), stale, ledger.MaxRelayBatch)
		if err != nil {
			return err
		}
		for _, ref := range charges {
			task, err := NewRechargeTask(ref)
			if err != nil {
				return err
			}
			if err := r.Client.enqueue(ctx, task, QueuePayments, RechargeTaskID(ref)); err != nil {
				return fmt.Errorf("hand over recharge %s of org %s: %w", ref.AttemptID, ref.OrgID, err)
			}
		}
		n = max(len(refs), len(charges))
		return nil
	})
	return n, err
}

// CheckWebhook checks a webhook receiver against the delivery policy before
// it is stored: the URL (scheme, https when required, no private address
// unless allowed) and the signing secret. Errors name the field.
func CheckWebhook(url, secret string, policy notify.WebhookOptions) error {
	if err := notify.ValidateWebhookURL(url, policy); err != nil {
		return &ledger.ValidationError{Field: "url", Reason: err.Error()}
	}
	if err := notify.ValidateSecret(secret); err != nil {
		return &ledger.ValidationError{Field: "secret", Reason: err.Error()}
	}
	return nil
}

// NotificationView is a notification as the CLI and the HTTP API show it:
// what is stored, and the title and message its deliveries carry.
type NotificationView struct {
	ledger.Notification
	Title   string `json:"title"`
	Message string `json:"message"`
}

// Notifications is the document of `creditd notifications --json` and of
// GET /v1/orgs/{org}/notifications: newest first, and, when the page is
// full, the id to pass as before for the next one.
type Notifications struct {
	Notifications []NotificationView `json:"notifications"`
	NextBefore    *int64             `json:"next_before,omitempty"`
}

// NotificationList renders one page of notifications read with limit,
// keeping their order.
func NotificationList(ns []ledger.Notification, limit int, linkBase string) Notifications {
	out := Notifications{Notifications: make([]NotificationView, len(ns))}
	for i, n := range ns {
		r := notify.Render(AlertMessage(n), linkBase)
		out.Notifications[i] = NotificationView{Notification: n, Title: r.Title, Message: r.Text}
	}
	if len(ns) > 0 && len(ns) == limit {
		next := ns[len(ns)-1].ID
		out.NextBefore = &next
	}
	return out
}
