package stripefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// maxExpandDepth is Stripe's limit on the levels of one expand path.
const maxExpandDepth = 4

// expand replaces the IDs named by expand paths (latest_charge,
// data.customer, invoice_settings.default_payment_method, …) with the objects
// they name, as Stripe does. Without paths it returns obj unchanged.
func (s *Server) expand(obj any, paths []string) (any, *apiError) {
	if len(paths) == 0 {
		return obj, nil
	}
	m, ok := toJSONValue(obj).(map[string]any)
	if !ok {
		panic(fmt.Sprintf("stripefake: expand: %T is not an object", obj))
	}
	for _, p := range paths {
		parts := strings.Split(p, ".")
		if len(parts) > maxExpandDepth {
			return nil, paramError("", "expand", "You cannot expand more than 4 levels of a property. Property: "+p)
		}
		if err := s.expandPath(m, parts, p); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (s *Server) expandPath(m map[string]any, parts []string, path string) *apiError {
	v, ok := m[parts[0]]
	if !ok {
		return invalidRequest(http.StatusBadRequest, "", "expand", "This property cannot be expanded ("+path+").")
	}
	if id, isID := v.(string); isID {
		obj := s.object(id)
		if obj == nil {
			return invalidRequest(http.StatusBadRequest, "", "expand", "This property cannot be expanded ("+path+").")
		}
		v = toJSONValue(obj)
		m[parts[0]] = v
	}
	if len(parts) == 1 {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		return s.expandPath(x, parts[1:], path)
	case []any:
		for _, e := range x {
			if em, ok := e.(map[string]any); ok {
				if err := s.expandPath(em, parts[1:], path); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// object finds a stored object by ID.
func (s *Server) object(id string) any {
	if v, ok := s.customers[id]; ok {
		return v
	}
	if v, ok := s.paymentMethods[id]; ok {
		return v
	}
	if v, ok := s.paymentIntents[id]; ok {
		return v
	}
	if v, ok := s.charges[id]; ok {
		return v
	}
	if v, ok := s.refunds[id]; ok {
		return v
	}
	if v, ok := s.invoiceItems[id]; ok {
		return v
	}
	if v, ok := s.invoices[id]; ok {
		return v
	}
	return nil
}

// toJSONValue turns an object into the generic form encoding/json decodes
// to, with numbers kept exact.
func toJSONValue(obj any) any {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("stripefake: encode %T: %v", obj, err))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(fmt.Sprintf("stripefake: decode %T: %v", obj, err))
	}
	return v
}
