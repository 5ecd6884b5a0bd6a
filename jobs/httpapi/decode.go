package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
)

// readBody reads the whole body, at most MaxBodyBytes of it (413 past that).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "body",
			msg: fmt.Sprintf("request body of %d bytes is larger than the limit of %d", r.ContentLength, s.cfg.MaxBodyBytes)}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "body",
			msg: fmt.Sprintf("request body larger than the limit of %d bytes", s.cfg.MaxBodyBytes)}
	case err != nil:
		return nil, &apiError{status: http.StatusBadRequest, code: "invalid", field: "body", msg: "could not read the request body", err: err}
	}
	return data, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// wrong types and anything after the object. Errors name the field, with
// prefix before it ("events[2]."); whole-value errors name the prefix
// itself ("events[2]") or "body".
func decodeStrict(data []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, prefix)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest(wholeField(prefix), "data after the JSON object")
	}
	return nil
}

// wholeField names the value being decoded as a whole.
func wholeField(prefix string) string {
	if prefix == "" {
		return "body"
	}
	return strings.TrimSuffix(prefix, ".")
}

func jsonError(err error, prefix string) error {
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.Is(err, io.EOF):
		return badRequest(wholeField(prefix), "a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(wholeField(prefix), "malformed JSON: it ends early")
	case errors.As(err, &syntaxErr):
		return badRequest(wholeField(prefix), fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest(wholeField(prefix), fmt.Sprintf("must be a JSON %s, not %s", jsonType(typeErr.Type), typeErr.Value))
		}
		msg := fmt.Sprintf("must be a JSON %s, not %s", jsonType(typeErr.Type), typeErr.Value)
		if typeErr.Field == "amount" {
			msg += ": amounts are decimal strings like \"2.5\", never JSON numbers"
		}
		return badRequest(prefix+typeErr.Field, msg)
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, unknown) {
		// encoding/json has no typed error for it; the message is fixed.
		return badRequest(prefix+strings.Trim(msg[len(unknown):], `"`), "unknown field")
	}
	return badRequest(wholeField(prefix), err.Error())
}

// jsonType names the JSON type a Go type decodes from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.String()
}

// query checks a request's query string: only the names in allowed, each at
// most once. It returns the values given.
func query(r *http.Request, allowed ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("query", "malformed query string")
	}
	out := make(map[string]string, len(q))
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		switch {
		case !known:
			return nil, badRequest(name, "unknown query parameter")
		case len(vs) > 1:
			return nil, badRequest(name, "given more than once")
		}
		out[name] = vs[0]
	}
	return out, nil
}
