package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hvro/hvro/test/sim/ctlapi"
	"github.com/hvro/hvro/test/sim/ecx"
	"github.com/hvro/hvro/test/sim/hyperv"
)

// State is GET /sim/state: the Hyper-V estate, every ECX cluster, and any
// event the lab could not apply.
type State struct {
	hyperv.State
	ECX    []ecx.ClusterState `json:"ecx"`
	Errors []string           `json:"errors"`
}

// State returns a snapshot of the whole lab. The clusters and the hosts are
// read under different locks, so a disk could move between the two reads
// and the snapshot would show a VM running where its disk is not. The
// clusters are read before and after the hosts, and the snapshot is taken
// again while their groups moved in between. ECX records a disk offline
// only after the hosts lost it, and online before they get it, so a stable
// cluster read brackets a consistent host read.
func (l *Lab) State() State {
	const tries = 50
	before := l.ecxState()
	for i := 1; ; i++ {
		st := State{State: l.World.State(), ECX: before, Errors: append([]string{}, l.Errors()...)}
		after := l.ecxState()
		if sameGroups(before, after) {
			return st
		}
		if i == tries {
			st.Errors = append(st.Errors, fmt.Sprintf("state: the clusters' groups changed during each of %d reads; this snapshot may be torn", tries))
			return st
		}
		before = after
	}
}

// Group returns a group of the snapshot, or the zero GroupState when there
// is no such cluster or group.
func (s State) Group(cluster, name string) ecx.GroupState {
	for _, c := range s.ECX {
		if c.Name == cluster {
			return c.Group(name)
		}
	}
	return ecx.GroupState{}
}

func (l *Lab) ecxState() []ecx.ClusterState {
	out := []ecx.ClusterState{}
	for _, c := range l.topo.ECX {
		out = append(out, l.Clusters[c.Name].State())
	}
	return out
}

// sameGroups reports whether two cluster reads agree on every group's
// status, owner and disk.
func sameGroups(a, b []ecx.ClusterState) bool {
	return slices.EqualFunc(a, b, func(x, y ecx.ClusterState) bool {
		return slices.EqualFunc(x.Groups, y.Groups, func(g, h ecx.GroupState) bool {
			return g.Name == h.Name && g.Status == h.Status && g.Owner == h.Owner && g.DiskOnline == h.DiskOnline
		})
	})
}

func (l *Lab) startControl() error {
	ln, err := net.Listen("tcp", l.topo.HyperV.Control)
	if err != nil {
		return fmt.Errorf("control API: listen on %s: %w", l.topo.HyperV.Control, err)
	}
	l.ctlAddr = ln.Addr()
	l.control = &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go l.control.Serve(ln)
	return nil
}

// Handler is the control API of CONTRACTS.md section 5.
func (l *Lab) Handler() http.Handler {
	mux := http.NewServeMux()
	ecxCtl := ecx.ControlHandler(l.Clusters)
	mux.Handle("/sim/ecx", ecxCtl)
	mux.Handle("/sim/ecx/", ecxCtl)
	mux.HandleFunc("GET /sim/state", func(w http.ResponseWriter, r *http.Request) {
		ctlapi.Reply(w, http.StatusOK, l.State())
	})
	mux.HandleFunc("GET /sim/log", func(w http.ResponseWriter, r *http.Request) {
		recs := l.World.Log()
		host := strings.ToLower(r.URL.Query().Get("host"))
		var since time.Time
		if s := r.URL.Query().Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				ctlapi.Error(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("since: %q is not an RFC 3339 time", s))
				return
			}
			since = t
		}
		out := []hyperv.CommandRecord{}
		for _, rec := range recs {
			if (host == "" || rec.Host == host) && !rec.Time.Before(since) {
				out = append(out, rec)
			}
		}
		ctlapi.Reply(w, http.StatusOK, map[string]any{"commands": out})
	})
	mux.HandleFunc("POST /sim/hosts/{host}/{action}", func(w http.ResponseWriter, r *http.Request) {
		host, action := r.PathValue("host"), r.PathValue("action")
		var err error
		switch action {
		case "crash":
			err = l.CrashHost(host)
		case "boot":
			err = l.BootHost(host)
		default:
			ctlapi.Error(w, http.StatusNotFound, "not_found", fmt.Sprintf("action %q: want crash or boot", action))
			return
		}
		if err != nil {
			writeLabError(w, err)
			return
		}
		ctlapi.Reply(w, http.StatusOK, map[string]any{"host": host, "action": action})
	})
	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f hyperv.Fault
		if err := ctlapi.Decode(r, &f, false); err != nil {
			ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		if err := l.World.AddFault(f); err != nil {
			ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		ctlapi.Reply(w, http.StatusOK, f)
	})
	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		l.World.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sim/latency", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Cmdlet string `json:"cmdlet"`
			MS     *int   `json:"ms"`
		}
		if err := ctlapi.Decode(r, &body, false); err != nil {
			ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		if body.MS == nil {
			ctlapi.Error(w, http.StatusBadRequest, "bad_request", "ms: missing")
			return
		}
		if err := l.World.SetLatency(body.Cmdlet, time.Duration(*body.MS)*time.Millisecond); err != nil {
			ctlapi.Error(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		ctlapi.Reply(w, http.StatusOK, map[string]any{"cmdlet": body.Cmdlet, "ms": *body.MS})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ctlapi.Error(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s %s is not a control API route", r.Method, r.URL.Path))
	})
	return mux
}

// decode reads a JSON body strictly: unknown fields and trailing data are errors.
func writeLabError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNotFound):
		ctlapi.Error(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, errConflict):
		ctlapi.Error(w, http.StatusConflict, "conflict", err.Error())
	default:
		ctlapi.Error(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// Control calls the lab's own control API over HTTP, as a test or a tool
// outside the lab would, and returns an error naming the call for any
// answer but 2xx. A move or a crash answers only once ECX's scripts ran,
// so ctx, not a client timeout, bounds it.
func (l *Lab) Control(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.Addrs().Control+path, rd)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
