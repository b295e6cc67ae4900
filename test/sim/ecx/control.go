package ecx

import (
	"context"
	"errors"
	"fmt"
	"github.com/hvro/hvro/test/sim/ctlapi"
	"net/http"
	"sort"
	"strings"
)

// ControlHandler serves the lab's control rows for emulated clusters
// (CONTRACTS.md section 5), under /sim/ecx/:
//
//	GET    /sim/ecx                                     {"clusters": [state...]}
//	GET    /sim/ecx/{cluster}                           state
//	POST   /sim/ecx/{cluster}/groups/{group}/move       {"target"?}  } answer when the group settled:
//	POST   /sim/ecx/{cluster}/groups/{group}/start      {"target"?}  } 200 {"group": state}; with
//	POST   /sim/ecx/{cluster}/groups/{group}/stop                    } ?wait=false 202 at once
//	POST   /sim/ecx/{cluster}/servers/{server}/down     crash; answers when its groups settled
//	POST   /sim/ecx/{cluster}/servers/{server}/up
//	GET    /sim/ecx/{cluster}/faults                    {"faults": [...]}
//	POST   /sim/ecx/{cluster}/faults                    Fault; kind "none" clears
//	DELETE /sim/ecx/{cluster}/faults                    clears all
//
// Errors are {"error": {"code", "message"}}: bad_request 400, not_found 404,
// refused 409 (busy, wrong state), operation_failed 409 (the group ended in a
// failure state; the message says what failed), closed 503, timeout 504.
func ControlHandler(clusters map[string]*Cluster) http.Handler {
	return &controlHandler{clusters: clusters}
}

type controlHandler struct {
	clusters map[string]*Cluster
}

func (h *controlHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/sim/ecx")
	if !ok {
		ctlapi.Error(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s is not a control path", r.URL.Path))
		return
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		if ctlAllow(w, r, http.MethodGet) {
			names := make([]string, 0, len(h.clusters))
			for n := range h.clusters {
				names = append(names, n)
			}
			sort.Strings(names)
			states := []ClusterState{}
			for _, n := range names {
				states = append(states, h.clusters[n].State())
			}
			ctlapi.Reply(w, http.StatusOK, map[string]any{"clusters": states})
		}
		return
	}
	seg := strings.Split(rest, "/")
	c, ok := h.clusters[seg[0]]
	if !ok {
		ctlapi.Error(w, http.StatusNotFound, "not_found", fmt.Sprintf("cluster %q is not emulated here", seg[0]))
		return
	}
	switch {
	case len(seg) == 1:
		if ctlAllow(w, r, http.MethodGet) {
			ctlapi.Reply(w, http.StatusOK, c.State())
		}
	case len(seg) == 2 && seg[1] == "faults":
		h.faults(w, r, c)
	case len(seg) == 4 && seg[1] == "groups" && (seg[3] == "move" || seg[3] == "start" || seg[3] == "stop"):
		if ctlAllow(w, r, http.MethodPost) {
			h.groupOp(w, r, c, seg[2], seg[3])
		}
	case len(seg) == 4 && seg[1] == "servers" && (seg[3] == "down" || seg[3] == "up"):
		if ctlAllow(w, r, http.MethodPost) {
			h.serverOp(w, r, c, seg[2], seg[3])
		}
	default:
		ctlapi.Error(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s is not a control path", r.URL.Path))
	}
}

func (h *controlHandler) faults(w http.ResponseWriter, r *http.Request, c *Cluster) {
	switch r.Method {
	case http.MethodGet:
		ctlapi.Reply(w, http.StatusOK, map[string]any{"faults": c.State().Faults})
	case http.MethodDelete:
		if err := c.SetFault(Fault{Kind: FaultNone}); err != nil {
			ctlFail(w, err)
			return
		}
		ctlapi.Reply(w, http.StatusOK, map[string]any{"faults": c.State().Faults})
	case http.MethodPost:
		var f Fault
		if err := ctlapi.Decode(r, &f, true); err != nil {
			ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		if err := c.SetFault(f); err != nil {
			ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		ctlapi.Reply(w, http.StatusOK, map[string]any{"faults": c.State().Faults})
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		ctlapi.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s does not take %s", r.URL.Path, r.Method))
	}
}

func (h *controlHandler) groupOp(w http.ResponseWriter, r *http.Request, c *Cluster, group, op string) {
	var body struct {
		Target string `json:"target"`
	}
	if err := ctlapi.Decode(r, &body, true); err != nil {
		ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if op == "stop" && body.Target != "" {
		ctlapi.Error(w, http.StatusBadRequest, "bad_request", "stop takes no target")
		return
	}
	h2, err := c.submit(opKind(op), group, body.Target)
	if err != nil {
		ctlFail(w, fmt.Errorf("%s group %s of %s: %w", op, group, c.Name(), err))
		return
	}
	if r.URL.Query().Get("wait") == "false" {
		ctlapi.Reply(w, http.StatusAccepted, map[string]any{"group": c.State().Group(group)})
		return
	}
	if err := h2.wait(r.Context()); err != nil {
		ctlFail(w, err)
		return
	}
	ctlapi.Reply(w, http.StatusOK, map[string]any{"group": c.State().Group(group)})
}

func (h *controlHandler) serverOp(w http.ResponseWriter, r *http.Request, c *Cluster, server, op string) {
	if err := ctlapi.Decode(r, &struct{}{}, true); err != nil {
		ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	var err error
	if op == "down" {
		err = c.ServerDown(r.Context(), server)
	} else {
		err = c.ServerUp(r.Context(), server)
	}
	if err != nil {
		ctlFail(w, err)
		return
	}
	ctlapi.Reply(w, http.StatusOK, c.State())
}

func ctlFail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		ctlapi.Error(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrRefused):
		ctlapi.Error(w, http.StatusConflict, "refused", err.Error())
	case errors.Is(err, ErrFailed):
		ctlapi.Error(w, http.StatusConflict, "operation_failed", err.Error())
	case errors.Is(err, ErrClosed):
		ctlapi.Error(w, http.StatusServiceUnavailable, "closed", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		ctlapi.Error(w, http.StatusGatewayTimeout, "timeout", err.Error())
	default:
		ctlapi.Error(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func ctlAllow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	ctlapi.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s does not take %s", r.URL.Path, r.Method))
	return false
}
