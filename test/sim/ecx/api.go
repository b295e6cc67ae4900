package ecx

import (
	"bytes"
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Result codes of the emulator. The real codes are not public; these are
// synthetic (API.md). Clients must branch on code != 0, not on the numbers.
const (
	CodeOK           = 0
	CodeInvalid      = 1  // malformed request, unknown target, wrong method
	CodeNotFound     = 2  // unknown group, server, resource, monitor or path
	CodeBusy         = 3  // another operation of the group is running
	CodeState        = 4  // the group or server is in the wrong state for this
	CodeServerDown   = 5  // the target server is not online
	CodeAuth         = 6  // missing or wrong Basic auth
	CodeNotSupported = 7  // an operation the emulator does not model
	CodeInternal     = 99 // internal error (also the injected http500 and result_code faults)
)

const maxRequestBody = 64 << 10

type apiHandler struct {
	c        *Cluster
	endpoint string
}

func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	if c.endpointDown(h.endpoint) {
		dropConnection(w)
		return
	}
	apiPath, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if f := c.takeFault(h.endpoint, apiPath); f != nil {
		c.log.Debug("fault injected", "kind", f.Kind, "endpoint", h.endpoint, "method", r.Method, "path", r.URL.Path)
		h.serveFault(w, r, f)
		return
	}
	user, pass, hasAuth := r.BasicAuth()
	if !hasAuth || !c.credentialsMatch(user, pass) {
		// Log the user, never the password.
		c.log.Info("api request refused: authentication", "endpoint", h.endpoint, "user", user, "path", r.URL.Path)
		writeUnauthorized(w)
		return
	}
	if !ok {
		writeResult(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("%s is not an API path.", r.URL.Path))
		return
	}
	h.route(w, r, strings.Split(apiPath, "/"))
}

func (c *Cluster) credentialsMatch(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(c.cfg.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(c.cfg.Password))
	return u&p == 1
}

func (h *apiHandler) serveFault(w http.ResponseWriter, r *http.Request, f *Fault) {
	switch f.Kind {
	case FaultHTTP500:
		writeResult(w, http.StatusInternalServerError, CodeInternal, cmp.Or(f.Message, "Internal server error."))
	case FaultResultCode:
		writeResult(w, http.StatusOK, f.Code, cmp.Or(f.Message, "The request failed (injected fault)."))
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-h.c.closing:
			dropConnection(w)
		}
	case FaultNonJSON:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center></body>\r\n</html>\r\n")
	case FaultUnauthorized:
		writeUnauthorized(w)
	}
}

var collections = map[string]bool{"servers": true, "groups": true, "resources": true, "monitors": true}

func (h *apiHandler) route(w http.ResponseWriter, r *http.Request, seg []string) {
	read := []string{http.MethodGet, http.MethodHead}
	post := []string{http.MethodPost}
	switch {
	case len(seg) == 1 && seg[0] == "cluster":
		if allow(w, r, read) {
			h.getCluster(w, r)
		}
	case len(seg) <= 2 && collections[seg[0]] && (len(seg) == 1 || seg[1] != ""):
		if allow(w, r, read) {
			name := ""
			if len(seg) == 2 {
				name = seg[1]
			}
			h.getCollection(w, r, seg[0], name)
		}
	case len(seg) == 3 && seg[0] == "groups" && seg[1] != "" && (seg[2] == "start" || seg[2] == "stop" || seg[2] == "move"):
		if allow(w, r, post) {
			h.postGroup(w, r, seg[1], opKind(seg[2]))
		}
	case len(seg) == 3 && seg[0] == "servers" && seg[1] != "" && (seg[2] == "start" || seg[2] == "stop" || seg[2] == "reboot" || seg[2] == "shutdown"):
		if allow(w, r, post) {
			h.postServer(w, r, seg[1], seg[2])
		}
	default:
		writeResult(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("%s is not an API path.", r.URL.Path))
	}
}

// allow answers 405 with an Allow header for a method the path does not take.
func allow(w http.ResponseWriter, r *http.Request, methods []string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeResult(w, http.StatusMethodNotAllowed, CodeInvalid, fmt.Sprintf("Method %s is not allowed for %s.", r.Method, r.URL.Path))
	return false
}

type object = map[string]any

func (h *apiHandler) getCluster(w http.ResponseWriter, r *http.Request) {
	c := h.c
	c.mu.Lock()
	obj := object{"name": c.cfg.Name, "status": c.clusterStatus(), "comment": ""}
	c.mu.Unlock()
	writeData(w, "cluster", selectFields(r, obj))
}

func (h *apiHandler) getCollection(w http.ResponseWriter, r *http.Request, coll, name string) {
	c := h.c
	c.mu.Lock()
	var all []object
	switch coll {
	case "servers":
		all = c.serverObjects()
	case "groups":
		all = c.groupObjects()
	case "resources":
		all = c.resourceObjects()
	case "monitors":
		all = c.monitorObjects()
	}
	c.mu.Unlock()
	if name != "" {
		var found []object
		for _, o := range all {
			if o["name"] == name {
				found = append(found, o)
			}
		}
		if len(found) == 0 {
			what := strings.TrimSuffix(coll, "s")
			writeResult(w, http.StatusNotFound, CodeNotFound, notFound(what, name).msg)
			return
		}
		all = found
	}
	out := make([]object, 0, len(all))
	for _, o := range all {
		out = append(out, selectFields(r, o))
	}
	writeData(w, coll, out)
}

// selectFields keeps the fields named in ?select=a,b (all when absent).
// Unknown names select nothing; the real server's answer to them is unknown.
func selectFields(r *http.Request, obj object) object {
	sel := r.URL.Query()["select"]
	var names []string
	for _, s := range sel {
		for n := range strings.SplitSeq(s, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return obj
	}
	out := object{}
	for _, n := range names {
		if v, ok := obj[n]; ok {
			out[n] = v
		}
	}
	return out
}

func apiOwner(owner string) string {
	if owner == "" {
		return "None"
	}
	return owner
}

// The object builders hold to the field names public clients read (name,
// status, current, resources, type, group, servers); "comment" and a group's
// "type" are there so that clients learn to ignore fields they do not know.
// Caller holds mu.
func (c *Cluster) serverObjects() []object {
	var out []object
	for _, s := range c.servers {
		out = append(out, object{"name": s.name, "status": serverStatus(s), "comment": ""})
	}
	return out
}

func (c *Cluster) groupObjects() []object {
	var out []object
	for _, g := range c.groups {
		var res []object
		for _, r := range g.res {
			res = append(res, object{"name": r.name})
		}
		out = append(out, object{"name": g.cfg.Name, "status": g.status, "current": apiOwner(g.owner),
			"type": "failover", "comment": "", "resources": res})
	}
	return out
}

func (c *Cluster) resourceObjects() []object {
	var out []object
	for _, g := range c.groups {
		for _, r := range g.res {
			out = append(out, object{"name": r.name, "type": r.typ, "status": r.status, "current": apiOwner(r.owner), "group": g.cfg.Name})
		}
	}
	return out
}

// monitorObjects: a user-mode monitor on every server, and an IP monitor per
// group that watches the group's FIP where the group is online.
func (c *Cluster) monitorObjects() []object {
	perServer := func(active func(*server) bool) ([]object, string) {
		var list []object
		normal := 0
		for _, s := range c.servers {
			st := "Offline"
			if s.up && active(s) {
				st = "Normal"
				normal++
			}
			list = append(list, object{"name": s.name, "status": st})
		}
		if normal == 0 {
			return list, "Offline"
		}
		return list, "Normal"
	}
	var out []object
	servers, st := perServer(func(*server) bool { return true })
	if st == "Normal" && c.clusterStatus() == "Caution" {
		st = "Caution"
	}
	out = append(out, object{"name": "userw", "type": "userw", "status": st, "servers": servers})
	for _, g := range c.groups {
		servers, st := perServer(func(s *server) bool { return g.status == StatusOnline && g.owner == s.name })
		out = append(out, object{"name": "fipw-" + g.cfg.Name, "type": "fipw", "status": st, "servers": servers})
	}
	return out
}

// postGroup answers at once: result.code 0 when the operation was accepted
// (it runs in the background; GET shows the Pending statuses), code != 0
// inside HTTP 200 when the cluster refuses it.
func (h *apiHandler) postGroup(w http.ResponseWriter, r *http.Request, name string, op opKind) {
	target, err := readTarget(r)
	if err != nil {
		writeResult(w, http.StatusBadRequest, CodeInvalid, err.Error())
		return
	}
	if op == opStop {
		target = "" // a stop happens where the group is
	}
	if _, err := h.c.submit(op, name, target); err != nil {
		writeRefusal(w, err)
		return
	}
	writeResult(w, http.StatusOK, CodeOK, "")
}

func (h *apiHandler) postServer(w http.ResponseWriter, r *http.Request, name, op string) {
	if _, err := readTarget(r); err != nil {
		writeResult(w, http.StatusBadRequest, CodeInvalid, err.Error())
		return
	}
	c := h.c
	c.mu.Lock()
	s := c.server(name)
	c.mu.Unlock()
	if s == nil {
		writeResult(w, http.StatusNotFound, CodeNotFound, notFound("server", name).msg)
		return
	}
	if op != "start" {
		writeResult(w, http.StatusNotImplemented, CodeNotSupported, fmt.Sprintf("Operation %s of servers is not emulated.", op))
		return
	}
	if err := c.ServerUp(r.Context(), s.name); err != nil {
		writeRefusal(w, err)
		return
	}
	writeResult(w, http.StatusOK, CodeOK, "")
}

// readTarget reads the optional body {"target": "<server>"} of an operation.
// No body, an empty body and {} all mean no target.
func readTarget(r *http.Request) (string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBody))
	if err != nil {
		return "", fmt.Errorf("Request body could not be read: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return "", fmt.Errorf("Request body must be JSON with Content-Type application/json, not %q.", r.Header.Get("Content-Type"))
	}
	var req struct {
		Target *string `json:"target"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", fmt.Errorf("Request body is not valid JSON: %v", err)
	}
	if req.Target == nil {
		return "", nil
	}
	if *req.Target == "" {
		return "", errors.New("Request body: target is empty.")
	}
	return *req.Target, nil
}

func writeRefusal(w http.ResponseWriter, err error) {
	var rf *refusal
	if errors.As(err, &rf) {
		writeResult(w, rf.status, rf.code, rf.msg)
		return
	}
	writeResult(w, http.StatusInternalServerError, CodeInternal, err.Error())
}

type apiResult struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeResult(w http.ResponseWriter, status, code int, msg string) {
	writeEnvelope(w, status, apiResult{code, msg}, "", nil)
}

func writeData(w http.ResponseWriter, key string, data any) {
	writeEnvelope(w, http.StatusOK, apiResult{}, key, data)
}

// writeEnvelope writes {"result": {...}, "<key>": data} with result first.
func writeEnvelope(w http.ResponseWriter, status int, res apiResult, key string, data any) {
	var b bytes.Buffer
	rb, _ := json.Marshal(res)
	b.WriteString(`{"result":`)
	b.Write(rb)
	if key != "" {
		db, err := json.Marshal(data)
		if err != nil {
			status, db = http.StatusInternalServerError, []byte("null")
		}
		fmt.Fprintf(&b, ",%q:", key)
		b.Write(db)
	}
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="EXPRESSCLUSTER"`)
	writeResult(w, http.StatusUnauthorized, CodeAuth, "Authentication failed.")
}
