// Package jobs is creditd's asynq contract and its workers: the task type
// names, the typed and versioned payloads with their constructors, the client
// applications use to enqueue usage, and the handlers that apply tasks to the
// ledger.
//
// Every task is safe to run twice: the ledger's idempotency keys, not asynq's
// task ids, make a redelivered task change nothing. A payload that cannot be
// decoded or fails validation is returned wrapped in asynq.SkipRetry, so asynq
// archives it at once with a message naming the field.
package jobs
