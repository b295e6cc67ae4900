package clusterapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The decoders accept what public clients show the real API sends and
// tolerate both readings where the research could not settle one
// (clusterapi/testdata/README.md lists each quirk):
//   - {"result": {"code", "message"}, "<collection>": ...}; result.code a
//     number or a numeric string;
//   - a collection as an array (even for one named object) or a lone object;
//   - "current" as a server name, "None", "" or null (the last three: no owner);
//   - unknown fields anywhere (ignored); status strings kept as they came.

// envelope is an answer decoded down to its result and one data key.
type envelope struct {
	hasResult bool
	code      int
	message   string
	data      json.RawMessage // nil when the key is absent
}

// decodeEnvelope reads an answer's result and, when key is set, its data.
// An answer without "result" is accepted only if it carries the data key.
func decodeEnvelope(body []byte, key string) (envelope, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return envelope{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if top == nil {
		return envelope{}, errors.New("not a JSON object: null")
	}
	var env envelope
	if d, ok := top[key]; ok && key != "" {
		env.data = d // null stays: an empty collection
	}
	raw, ok := top["result"]
	if !ok || isNull(raw) {
		if env.data == nil {
			return envelope{}, errors.New(`no "result" object`)
		}
		return env, nil
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(raw, &res); err != nil || res == nil {
		return envelope{}, errors.New(`"result" is not an object`)
	}
	code, ok := res["code"]
	if !ok || isNull(code) {
		return envelope{}, errors.New(`"result" has no "code"`)
	}
	c, err := parseCode(code)
	if err != nil {
		return envelope{}, err
	}
	env.hasResult, env.code = true, c
	if m, ok := res["message"]; ok && !isNull(m) {
		var s string
		if json.Unmarshal(m, &s) == nil {
			env.message = s
		} else {
			env.message = string(m) // a message that is not a string: keep its text rather than lose it
		}
	}
	return env, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// parseCode accepts 3, 3.0 and "3"; a Python client of NEC's does int(code).
func parseCode(raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return 0, fmt.Errorf(`"result.code" %s is not a number`, excerpt(raw))
		}
		s = strings.TrimSpace(str)
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, fmt.Errorf(`"result.code" %s is not an integer`, excerpt(raw))
	}
	return int(f), nil
}

// flexString is a JSON string or null.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%s is not a string", excerpt(b))
	}
	*s = flexString(v)
	return nil
}

// owner normalises "current": a server name, or "" for "None", "" and null.
func owner(s flexString) string {
	v := strings.TrimSpace(string(s))
	if strings.EqualFold(v, "None") {
		return ""
	}
	return v
}

// elements splits a collection that is an array, a lone object or null.
func elements(data json.RawMessage) ([]json.RawMessage, error) {
	d := bytes.TrimSpace(data)
	switch {
	case len(d) == 0 || isNull(d):
		return nil, nil
	case d[0] == '{':
		return []json.RawMessage{d}, nil
	case d[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(d, &list); err != nil {
			return nil, err
		}
		return list, nil
	}
	return nil, fmt.Errorf("%s is neither an array nor an object", excerpt(d))
}

func decodeEach[T any](what string, data json.RawMessage, fn func(json.RawMessage) (T, error)) ([]T, error) {
	if data == nil {
		return nil, fmt.Errorf("answer has no %q", what)
	}
	els, err := elements(data)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", what, err)
	}
	out := make([]T, 0, len(els))
	for i, el := range els {
		v, err := fn(el)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", what, i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

type rawGroup struct {
	Name      flexString      `json:"name"`
	Status    flexString      `json:"status"`
	Current   flexString      `json:"current"`
	Resources json.RawMessage `json:"resources"`
}

func decodeGroups(data json.RawMessage) ([]Group, error) {
	return decodeEach("groups", data, func(el json.RawMessage) (Group, error) {
		var r rawGroup
		if err := json.Unmarshal(el, &r); err != nil {
			return Group{}, err
		}
		g := Group{Name: string(r.Name), Status: GroupStatus(r.Status), Owner: owner(r.Current), Resources: resourceNames(r.Resources)}
		return g, firstErr(checkText("name", g.Name, maxName), checkText("status", string(g.Status), maxStatus), checkServerName("current", g.Owner))
	})
}

// resourceNames reads a group's resources as objects with a name or as plain
// names; anything else is ignored: the owner matters, this does not.
func resourceNames(raw json.RawMessage) []string {
	var objs []struct {
		Name flexString `json:"name"`
	}
	if json.Unmarshal(raw, &objs) == nil {
		var out []string
		for _, o := range objs {
			if o.Name != "" {
				out = append(out, string(o.Name))
			}
		}
		return out
	}
	var names []string
	if json.Unmarshal(raw, &names) == nil {
		return names
	}
	return nil
}

func decodeServers(data json.RawMessage) ([]Server, error) {
	return decodeEach("servers", data, func(el json.RawMessage) (Server, error) {
		var r struct {
			Name   flexString `json:"name"`
			Status flexString `json:"status"`
		}
		if err := json.Unmarshal(el, &r); err != nil {
			return Server{}, err
		}
		s := Server{Name: string(r.Name), Status: ServerStatus(r.Status)}
		return s, firstErr(checkServerName("name", s.Name), checkText("status", string(s.Status), maxStatus))
	})
}

func decodeResources(data json.RawMessage) ([]Resource, error) {
	return decodeEach("resources", data, func(el json.RawMessage) (Resource, error) {
		var r struct {
			Name    flexString `json:"name"`
			Type    flexString `json:"type"`
			Status  flexString `json:"status"`
			Current flexString `json:"current"`
			Group   flexString `json:"group"`
		}
		if err := json.Unmarshal(el, &r); err != nil {
			return Resource{}, err
		}
		res := Resource{Name: string(r.Name), Type: string(r.Type), Status: string(r.Status), Owner: owner(r.Current), Group: string(r.Group)}
		return res, firstErr(checkText("name", res.Name, maxName), checkText("type", res.Type, maxStatus), checkText("status", res.Status, maxStatus),
			checkServerName("current", res.Owner), checkText("group", res.Group, maxName))
	})
}

func decodeCluster(data json.RawMessage) (ClusterInfo, error) {
	list, err := decodeEach("cluster", data, func(el json.RawMessage) (ClusterInfo, error) {
		var r struct {
			Name   flexString `json:"name"`
			Status flexString `json:"status"`
		}
		if err := json.Unmarshal(el, &r); err != nil {
			return ClusterInfo{}, err
		}
		ci := ClusterInfo{Name: string(r.Name), Status: string(r.Status)}
		return ci, firstErr(checkText("name", ci.Name, maxName), checkText("status", ci.Status, maxStatus))
	})
	if err != nil {
		return ClusterInfo{}, err
	}
	if len(list) != 1 {
		return ClusterInfo{}, fmt.Errorf(`"cluster" holds %d objects, want 1`, len(list))
	}
	return list[0], nil
}
