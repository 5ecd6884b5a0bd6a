// Package notify delivers alert messages to the people and systems that act
// on them: email over SMTP (EmailSender) and signed HTTP POSTs following
// Standard Webhooks (WebhookSender). It also renders an Alert into a short
// human-readable message (Render) and the JSON webhook payload (WebhookBody).
//
// notify holds no state and touches no database, queue or payment provider.
// Deciding that an alert fires, storing it in the Postgres outbox and retrying
// failed deliveries with backoff all live in ledger and jobs; this package only
// makes one delivery attempt per call and tells the caller, through
// *DeliveryError and IsPermanent, whether another attempt can succeed.
//
// Every message carries a stable id chosen by the outbox (the webhook-id
// header, the email Message-ID). A retry after a crash reuses the id, so a
// receiver that already acknowledged a message can drop the repeat.
package notify
