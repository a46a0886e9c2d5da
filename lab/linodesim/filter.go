package linodesim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// pred is a compiled X-Filter.
type pred func(in Instance) bool

// filterErr is a client error in X-Filter; Linode answers 400 with field X-Filter.
type filterErr string

func (e filterErr) Error() string { return string(e) }

// filterFields are the instance fields X-Filter may name, as Linode spells them.
var filterFields = map[string]func(in Instance) any{
	"id":         func(in Instance) any { return float64(in.ID) },
	"label":      func(in Instance) any { return in.Label },
	"region":     func(in Instance) any { return in.Region },
	"type":       func(in Instance) any { return in.Type },
	"image":      func(in Instance) any { return in.Image },
	"status":     func(in Instance) any { return in.Status },
	"tags":       func(in Instance) any { return in.Tags },
	"group":      func(Instance) any { return "" },
	"hypervisor": func(Instance) any { return "kvm" },
	"created":    func(in Instance) any { return in.Created.UTC().Format(timeLayout) },
	"updated":    func(in Instance) any { return in.Updated.UTC().Format(timeLayout) },
}

// parseFilter compiles an X-Filter header into a predicate and a sort
// function. Unknown fields and operators are errors, as on Linode, even when
// there is nothing to filter.
func parseFilter(header string) (pred, func([]Instance), error) {
	all := func(Instance) bool { return true }
	noSort := func([]Instance) {}
	if strings.TrimSpace(header) == "" {
		return all, noSort, nil
	}
	var root map[string]any
	dec := json.NewDecoder(strings.NewReader(header))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, nil, filterErr("Invalid JSON in X-Filter")
	}
	p, err := compile(root)
	if err != nil {
		return nil, nil, err
	}
	sortFn := noSort
	if by, ok := root["+order_by"]; ok {
		key, _ := by.(string)
		get, ok := filterFields[key]
		if !ok || key == "tags" {
			return nil, nil, filterErr(fmt.Sprintf("Cannot order by %v", by))
		}
		desc := root["+order"] == "desc"
		sortFn = func(insts []Instance) {
			slices.SortStableFunc(insts, func(a, b Instance) int {
				c := compare(get(a), get(b))
				if desc {
					return -c
				}
				return c
			})
		}
	}
	return p, sortFn, nil
}

func compile(obj map[string]any) (pred, error) {
	var preds []pred
	for key, val := range obj {
		switch key {
		case "+order_by", "+order":
			continue
		case "+and", "+or":
			list, ok := val.([]any)
			if !ok {
				return nil, filterErr(key + " must be a list")
			}
			var subs []pred
			for _, item := range list {
				m, ok := item.(map[string]any)
				if !ok {
					return nil, filterErr(key + " must be a list of objects")
				}
				p, err := compile(m)
				if err != nil {
					return nil, err
				}
				subs = append(subs, p)
			}
			preds = append(preds, combine(subs, key == "+or"))
			continue
		}
		get, ok := filterFields[key]
		if !ok {
			return nil, filterErr("Cannot filter on " + key)
		}
		ops, ok := val.(map[string]any)
		if !ok {
			ops = map[string]any{"+eq": val}
		}
		for op, want := range ops {
			p, err := compileOp(get, op, norm(want))
			if err != nil {
				return nil, err
			}
			preds = append(preds, p)
		}
	}
	return combine(preds, false), nil
}

// combine ANDs (or ORs) preds; an empty list matches everything.
func combine(preds []pred, or bool) pred {
	if len(preds) == 0 {
		return func(Instance) bool { return true }
	}
	return func(in Instance) bool {
		for _, p := range preds {
			if p(in) == or {
				return or
			}
		}
		return !or
	}
}

func compileOp(get func(Instance) any, op string, want any) (pred, error) {
	// A list field such as tags matches if any element does.
	anyOf := func(test func(have any) bool) pred {
		return func(in Instance) bool {
			if list, ok := get(in).([]string); ok {
				return slices.ContainsFunc(list, func(s string) bool { return test(s) })
			}
			return test(get(in))
		}
	}
	switch op {
	case "+eq":
		return anyOf(func(h any) bool { return compare(h, want) == 0 }), nil
	case "+neq":
		eq := anyOf(func(h any) bool { return compare(h, want) == 0 })
		return func(in Instance) bool { return !eq(in) }, nil
	case "+contains":
		sub := strings.ToLower(fmt.Sprint(want))
		return anyOf(func(h any) bool { return strings.Contains(strings.ToLower(fmt.Sprint(h)), sub) }), nil
	case "+gt":
		return anyOf(func(h any) bool { return compare(h, want) > 0 }), nil
	case "+gte":
		return anyOf(func(h any) bool { return compare(h, want) >= 0 }), nil
	case "+lt":
		return anyOf(func(h any) bool { return compare(h, want) < 0 }), nil
	case "+lte":
		return anyOf(func(h any) bool { return compare(h, want) <= 0 }), nil
	}
	return nil, filterErr("Unknown filter operator " + op)
}

// norm turns JSON numbers into float64 so they compare with numeric fields.
func norm(v any) any {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		if err == nil {
			return f
		}
		return n.String()
	}
	return v
}

// compare orders a numeric field numerically (accepting a numeric string,
// as Linode does for id) and everything else as strings.
func compare(have, want any) int {
	if h, ok := have.(float64); ok {
		if w, ok := num(want); ok {
			return cmp.Compare(h, w)
		}
	}
	return strings.Compare(fmt.Sprint(have), fmt.Sprint(want))
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}
