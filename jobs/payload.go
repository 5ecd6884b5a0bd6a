package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hibiken/asynq"
)

// MaxPayloadBytes bounds a task payload; larger ones are refused at enqueue
// and archived if they reach a worker anyway.
const MaxPayloadBytes = 64 << 10

// PayloadError is a payload that can never be processed: it names the field
// and is archived, not retried.
type PayloadError struct {
	Field  string
	Reason string
}

func (e *PayloadError) Error() string { return "payload: " + e.Field + ": " + e.Reason }

// decodeStrict decodes a JSON payload of at most MaxPayloadBytes refusing
// unknown fields, trailing data and oversized input, and maps decoding errors
// to a *PayloadError that names the field.
func decodeStrict(data []byte, v any) error { return decodeStrictN(data, v, MaxPayloadBytes) }

// decodeStrictN is decodeStrict with a size limit of limit bytes.
func decodeStrictN(data []byte, v any, limit int) error {
	if len(data) > limit {
		return &PayloadError{Field: "payload", Reason: fmt.Sprintf("larger than %d bytes", limit)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &PayloadError{Field: "payload", Reason: "data after the JSON object"}
	}
	return nil
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return &PayloadError{Field: typeErr.Field, Reason: fmt.Sprintf("must be a JSON %s, not %s", typeErr.Type, typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return &PayloadError{Field: "payload", Reason: fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)}
	}
	msg := err.Error()
	const unknown = "json: unknown field "
	if len(msg) > len(unknown) && msg[:len(unknown)] == unknown {
		return &PayloadError{Field: msg[len(unknown)+1 : len(msg)-1], Reason: "unknown field"}
	}
	var pe *PayloadError
	if errors.As(err, &pe) {
		return pe
	}
	return &PayloadError{Field: "payload", Reason: msg}
}

// encodePayload marshals a task payload and refuses one over limit bytes.
func encodePayload(v any, limit int) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	if len(data) > limit {
		return nil, &PayloadError{Field: "payload", Reason: fmt.Sprintf("larger than %d bytes", limit)}
	}
	return data, nil
}

// permanent wraps an error so asynq archives the task instead of retrying.
func permanent(err error) error { return fmt.Errorf("%w: %w", err, asynq.SkipRetry) }
