// Package stripefake is a stateful, fault-injecting fake of the part of the
// Stripe API that creditd's payments use, served over real HTTP so that the
// real stripe-go v76 client (API version 2023-10-16) talks to it unchanged.
//
// It exists because stripe-mock, Stripe's own mock server, is stateless: it
// validates request shapes against the OpenAPI spec but never declines a card,
// never replays an idempotent request and leaves every PaymentIntent in
// requires_payment_method. The properties creditd's payments must have —
// "a low balance never causes two charges, also across retries and crashes",
// "a decline is recorded with Stripe's code and decline code", "a crash between
// Stripe's success and the ledger commit ends with the credits added exactly
// once" — can only be tested against a server that remembers what it charged,
// declines the cards Stripe's test tokens decline, replays idempotency keys the
// way Stripe does, and fails in the ways networks fail.
//
// Like net/http/httptest it is test support: import it from tests only. It
// lives in a non-test file so that the tests of other packages can use it.
//
// # What it speaks
//
// Requests are what stripe-go sends: form-encoded bodies (chunked or not) with
// bracket notation for nested parameters (metadata[org_id]=acme, expand[0]=…
// or expand[]=…), GET parameters in the query string, "Authorization: Bearer
// sk_test_…" (any test secret key; anything else is a 401), an
// Idempotency-Key header and a Stripe-Version header (a version other than
// 2023-10-16 is rejected, so that upgrading stripe-go without upgrading the
// fake fails loudly instead of decoding half-filled structs). Responses are
// JSON objects shaped like Stripe's (object, id, created, livemode:false, null
// for unset fields, expandable fields as IDs unless expand[] asks otherwise)
// and errors are Stripe's {"error":{type,code,decline_code,message,param,…}}
// so that stripe-go turns them into *stripe.Error. A parameter the fake does
// not model is rejected as parameter_unknown rather than silently ignored.
//
// Endpoints: customers (create, retrieve, update), payment methods (create
// from a test token, retrieve, attach, detach), payment intents (create with
// or without confirm, retrieve, list), refunds (create), invoice items
// (create) and invoices (create, retrieve, finalize, pay). Any other route is
// a Stripe-shaped 404. The test tokens and what their cards do:
//
//	tok_visa                             visa/4242        charges succeed
//	tok_mastercard                       mastercard/4444  charges succeed
//	tok_chargeDeclined                   visa/0002        card_declined, generic_decline
//	tok_chargeDeclinedInsufficientFunds  visa/9995        card_declined, insufficient_funds
//	tok_authenticationRequired           visa/3184        needs 3D Secure on every charge
//
// Attaching never checks the card (as with Stripe's 4000000000000341 test
// card): declines happen when a charge is attempted. Server.SetDecline makes
// any card decline from then on.
//
// # Idempotency
//
// As Stripe does, for each API key the first response to a POST with an
// Idempotency-Key — status and body, errors included — is stored and returned
// again, with the header "Idempotent-Replayed: true", to a later request with
// the same key and the same method, path and parameters; the same key with
// other parameters is a 400 idempotency_error. Requests rejected before the
// endpoint ran (authentication, unknown route, parameter validation, injected
// 500/429/timeout) store nothing, so a retry runs for real. Stripe forgets
// keys after 24 hours; Server.ExpireIdempotencyKeys does that at once.
//
// # Fault model
//
// Server.FailNext queues faults for the next requests under a path prefix.
// Each request takes at most one queued fault, the oldest that matches its
// path:
//
//   - Fault500 and Fault429 answer at once with Stripe's api_error or
//     rate_limit error, before the endpoint runs: nothing happens, nothing is
//     stored, a retry with the same key runs for real.
//   - FaultTimeout holds the request without running it until the client gives
//     up (its context or HTTP timeout) or 30 seconds pass, then drops the
//     connection.
//   - FaultDropResponse runs the request and stores its idempotent result,
//     then drops the connection without answering: Stripe succeeded but the
//     response was lost. A retry with the same key gets the stored response.
//   - FaultHoldResponse runs the request and stores its result like
//     FaultDropResponse, but holds the answer until the client gives up or
//     goes away (or 30 seconds pass) before dropping the connection: the
//     caller dies while Stripe has already succeeded (a worker SIGKILLed
//     waiting for its charge).
//   - FaultDecline and FaultAuthRequired wait for a request that charges a
//     card (creating a confirmed PaymentIntent, paying an invoice) and make
//     that charge decline with card_declined/generic_decline or need
//     authentication, whatever the card.
//   - FaultNone lets one request through untouched, to say "the second
//     request fails".
//
// Server.Requests lists every request with the fault it took, and
// Server.Charges sums what a customer was really charged — each succeeded
// PaymentIntent once, however often its response was replayed — so a test can
// assert "charged exactly once".
//
// What it does not model: webhooks, automatic invoice collection
// (auto_advance is stored, never acted on), captures, disputes, currencies'
// minimum amounts other than 50 minor units, concurrent requests with the
// same idempotency key (Stripe answers the second with 409; here requests are
// served one at a time, so the second is a replay).
package stripefake
