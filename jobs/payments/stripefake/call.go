package stripefake

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

// call is one request being served by an endpoint.
type call struct {
	s    *Server
	form url.Values
	// id is the {id} segment of the path, if the route has one.
	id  string
	req *Request
	// chargeRule is a pending FaultDecline or FaultAuthRequired, taken only
	// if the endpoint charges a card.
	chargeRule *faultRule
}

// chargeFault takes the pending charge fault, if any, for the charge the
// endpoint is about to make.
func (c *call) chargeFault() Fault {
	if c.chargeRule == nil {
		return FaultNone
	}
	c.s.consumeFault(c.chargeRule)
	c.req.Fault = c.chargeRule.fault
	c.chargeRule = nil
	return c.req.Fault
}

// allow rejects any parameter not named, the way Stripe rejects unknown
// ones: here "unknown" means "not modelled by the fake", which is better
// surfaced than silently ignored. A name may end in "[*]" (any one sub-key,
// as in metadata[*]) or "[]" (an array: name[0], name[1] or name[]). Every
// endpoint allows expand[].
func (c *call) allow(names ...string) *apiError {
	keys := make([]string, 0, len(c.form))
	for k := range c.form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	names = append(names[:len(names):len(names)], "expand[]")
	for _, k := range keys {
		if !allowed(k, names) {
			return paramError("parameter_unknown", k, "Received unknown parameter: "+k)
		}
	}
	return nil
}

func allowed(key string, names []string) bool {
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "[*]"):
			sub, ok := strings.CutPrefix(key, n[:len(n)-2])
			if ok && strings.HasSuffix(sub, "]") && !strings.ContainsAny(sub[:len(sub)-1], "[]") {
				return true
			}
		case strings.HasSuffix(n, "[]"):
			if arrayIndex(key, n[:len(n)-2]) {
				return true
			}
		case key == n:
			return true
		}
	}
	return false
}

// arrayIndex reports whether key is base[] or base[N].
func arrayIndex(key, base string) bool {
	idx, ok := strings.CutPrefix(key, base+"[")
	if !ok || !strings.HasSuffix(idx, "]") {
		return false
	}
	idx = idx[:len(idx)-1]
	if idx == "" {
		return true
	}
	_, err := strconv.ParseUint(idx, 10, 31)
	return err == nil
}

// required rejects a request missing any of the named parameters.
func (c *call) required(names ...string) *apiError {
	for _, n := range names {
		if c.str(n) == "" {
			return paramError("parameter_missing", n, "Missing required param: "+n+".")
		}
	}
	return nil
}

func (c *call) str(name string) string {
	return c.form.Get(name)
}

func (c *call) has(name string) bool {
	_, ok := c.form[name]
	return ok
}

// int parses an integer parameter; absent is zero.
func (c *call) int(name string) (int64, *apiError) {
	v := c.str(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, paramError("parameter_invalid_integer", name, "Invalid integer: "+v)
	}
	return n, nil
}

// bool parses a boolean parameter; absent is false.
func (c *call) bool(name string) (bool, *apiError) {
	switch v := c.str(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, paramError("", name, "Invalid boolean: "+v)
	}
}

// list returns the values of an array parameter sent as name[N] or name[].
func (c *call) list(name string) []string {
	type item struct {
		i int
		v []string
	}
	var items []item
	for k, vs := range c.form {
		if !arrayIndex(k, name) {
			continue
		}
		i, _ := strconv.Atoi(k[len(name)+1 : len(k)-1])
		items = append(items, item{i, vs})
	}
	sort.Slice(items, func(a, b int) bool { return items[a].i < items[b].i })
	var out []string
	for _, it := range items {
		out = append(out, it.v...)
	}
	return out
}

// metadata returns the metadata[key]=value parameters, nil if there are none.
func (c *call) metadata() map[string]string {
	var md map[string]string
	for k, vs := range c.form {
		key, ok := strings.CutPrefix(k, "metadata[")
		if !ok || !strings.HasSuffix(key, "]") {
			continue
		}
		if md == nil {
			md = map[string]string{}
		}
		md[key[:len(key)-1]] = vs[0]
	}
	return md
}

// mergeMetadata applies an update's metadata the way Stripe does: keys are
// set, an empty value removes a key, and metadata= (empty) removes them all.
func (c *call) mergeMetadata(md map[string]string) {
	if c.has("metadata") && c.str("metadata") == "" {
		clear(md)
	}
	for k, v := range c.metadata() {
		if v == "" {
			delete(md, k)
		} else {
			md[k] = v
		}
	}
}

// apiError is an error answer. validation marks errors found before the
// endpoint started its work, which Stripe does not store for idempotency.
type apiError struct {
	status     int
	body       errorBody
	validation bool
}

// errorBody is Stripe's error object, also used as last_payment_error.
type errorBody struct {
	Charge        string         `json:"charge,omitempty"`
	Code          string         `json:"code,omitempty"`
	DeclineCode   string         `json:"decline_code,omitempty"`
	DocURL        string         `json:"doc_url,omitempty"`
	Message       string         `json:"message"`
	Param         string         `json:"param,omitempty"`
	PaymentIntent *paymentIntent `json:"payment_intent,omitempty"`
	PaymentMethod *paymentMethod `json:"payment_method,omitempty"`
	Type          string         `json:"type"`
}

func invalidRequest(status int, code, param, msg string) *apiError {
	return &apiError{status: status, body: errorBody{
		Type:    string(stripe.ErrorTypeInvalidRequest),
		Code:    code,
		DocURL:  docURL(code),
		Message: msg,
		Param:   param,
	}}
}

// paramError is a 400 for a malformed parameter: not stored for idempotency.
func paramError(code, param, msg string) *apiError {
	e := invalidRequest(http.StatusBadRequest, code, param, msg)
	e.validation = true
	return e
}

// noSuch is Stripe's resource_missing error for an ID that names nothing.
func noSuch(status int, kind, id, param string) *apiError {
	return invalidRequest(status, string(stripe.ErrorCodeResourceMissing), param, "No such "+kind+": '"+id+"'")
}

func docURL(code string) string {
	if code == "" {
		return ""
	}
	return "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(code, "_", "-")
}
