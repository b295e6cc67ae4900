package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/orchestrator/httpapi"
	"github.com/hvro/hvro/store"
)

// adminFlags are the connection flags every operator command shares.
type adminFlags struct {
	server, tokenFile, caFile, output string
	insecure                          bool
}

func (a *adminFlags) register(fs *flag.FlagSet, env func(string) string) {
	def := env("HVRO_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	fs.StringVar(&a.server, "server", def, "hvro's API (env HVRO_SERVER)")
	fs.StringVar(&a.tokenFile, "token-file", env("HVRO_TOKEN_FILE"), "file holding the admin token (env HVRO_TOKEN_FILE)")
	fs.StringVar(&a.caFile, "ca-file", "", "PEM CA to verify hvro's https certificate")
	fs.BoolVar(&a.insecure, "insecure-skip-verify", false, "do not verify hvro's https certificate")
	fs.StringVar(&a.output, "o", "table", "output: table or json")
}

func (a *adminFlags) client() (*apiClient, error) {
	if a.output != "table" && a.output != "json" {
		return nil, fmt.Errorf("-o %q: want table or json", a.output)
	}
	if a.tokenFile == "" {
		return nil, fmt.Errorf("--token-file (or HVRO_TOKEN_FILE) is required: the admin token")
	}
	u, err := url.Parse(a.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http(s) URL", a.server)
	}
	tok, err := config.ReadSecretFile(a.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	hc, err := HTTPClient(a.caFile, a.insecure, 60*time.Second)
	if err != nil {
		return nil, err
	}
	return &apiClient{base: strings.TrimRight(a.server, "/"), token: tok, http: hc}, nil
}

// Admin runs the operator commands status, pair, reconcile, pause, resume,
// failover and ops against a running hvro.
func Admin(name string, args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvro "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	af.register(fs, env)
	mode := fs.String("mode", "", "failover: planned or unplanned")
	wait := fs.Duration("wait", 0, "failover: wait this long for the operation to end")
	force := fs.Bool("force", false, "failover --mode unplanned: go ahead without evidence that the primary site stopped the VM (it is gone); needs --reason")
	reason := fs.String("reason", "", "failover --force: why the primary site is known to be lost (journaled)")
	pair := fs.String("pair", "", "ops: only this pair's operations")
	limit := fs.Int("limit", 20, "ops: how many operations")
	// Positional arguments may come before flags (hvro pause vm1 --server ...).
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hvro %s: "+format+"\n", append([]any{name}, a...)...)
		return 2
	}
	if name == "pair" {
		if len(pos) != 2 || pos[0] != "show" {
			return usage("usage: hvro pair show NAME")
		}
		pos = pos[1:]
	}
	needsName := name != "status" && name != "ops"
	if needsName && len(pos) != 1 || !needsName && len(pos) != 0 {
		return usage("unexpected arguments %q", pos)
	}
	c, err := af.client()
	if err != nil {
		return usage("%v", err)
	}
	run := func() error {
		switch name {
		case "status":
			var r struct{ Pairs []httpapi.PairView }
			if err := c.do("GET", "/v1/pairs", nil, &r); err != nil {
				return err
			}
			if af.output == "json" {
				return writeJSONOut(stdout, r)
			}
			printStatus(stdout, r.Pairs, time.Now())
		case "pair":
			var d httpapi.PairDetail
			if err := c.do("GET", "/v1/pairs/"+url.PathEscape(pos[0]), nil, &d); err != nil {
				return err
			}
			if af.output == "json" {
				return writeJSONOut(stdout, d)
			}
			printPair(stdout, d)
		case "reconcile", "pause", "resume":
			if err := c.do("POST", "/v1/pairs/"+url.PathEscape(pos[0])+"/"+name, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %s requested\n", cell(pos[0]), name)
		case "failover":
			if *mode != "planned" && *mode != "unplanned" {
				return fmt.Errorf("%w: --mode planned|unplanned is required", errUsage)
			}
			if *force && (*mode != "unplanned" || strings.TrimSpace(*reason) == "") {
				return fmt.Errorf("%w: --force needs --mode unplanned and --reason \"why the primary site is known to be lost\"", errUsage)
			}
			body := map[string]any{"mode": *mode}
			if *force {
				body["force"], body["reason"] = true, *reason
			}
			var r struct{ Op uint64 }
			if err := c.do("POST", "/v1/pairs/"+url.PathEscape(pos[0])+"/failover", body, &r); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %s failover queued as operation %d\n", cell(pos[0]), *mode, r.Op)
			if *wait > 0 {
				return waitOperation(c, r.Op, *wait, stdout)
			}
		case "ops":
			q := fmt.Sprintf("/v1/operations?limit=%d", *limit)
			if *pair != "" {
				q += "&pair=" + url.QueryEscape(*pair)
			}
			var r struct{ Operations []store.Operation }
			if err := c.do("GET", q, nil, &r); err != nil {
				return err
			}
			if af.output == "json" {
				return writeJSONOut(stdout, r)
			}
			printOps(stdout, r.Operations)
		}
		return nil
	}
	if err := run(); err != nil {
		if errors.Is(err, errUsage) {
			return usage("%v", err)
		}
		// hvro's answers relay what ECX and the hosts said.
		fmt.Fprintf(stderr, "hvro %s: %s\n", name, printable(err.Error(), 4*maxText))
		return 1
	}
	return 0
}

func waitOperation(c *apiClient, id uint64, wait time.Duration, out io.Writer) error {
	deadline := time.Now().Add(wait)
	for {
		var op store.Operation
		if err := c.do("GET", fmt.Sprintf("/v1/operations/%d", id), nil, &op); err != nil {
			return err
		}
		if op.State != store.OpRunning {
			printSteps(out, op)
			if op.State != store.OpSucceeded {
				return fmt.Errorf("operation %d %s: %s", id, op.State, text(op.Error))
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("operation %d still running after %s; follow it with hvro ops", id, wait)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func side(s httpapi.SideView) string {
	h := s.Host
	if h == "" {
		h = "-"
	}
	return cell(s.Cluster) + "/" + cell(h)
}

func ago(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	return now.Sub(*t).Round(time.Second).String()
}

func printStatus(w io.Writer, pairs []httpapi.PairView, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PAIR\tPRIMARY\tREPLICA\tSTATE\tREPLICATION\tHEALTH\tLAST OP\tLAG\tCONVERGED")
	for _, p := range pairs {
		state := cell(p.Phase)
		if p.Degraded != nil {
			state += " (" + cell(p.Degraded.Reason) + ")"
		}
		lag := "-"
		if p.Replication.LagSeconds != nil {
			lag = (time.Duration(*p.Replication.LagSeconds * float64(time.Second))).Round(time.Second).String()
		}
		op := "-"
		if p.LastOp != 0 {
			op = fmt.Sprint(p.LastOp)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(p.Name), side(p.Primary), side(p.Replica), state,
			cell(orDash(p.Replication.State)), cell(orDash(p.Replication.Health)), op, lag, ago(now, p.LastConvergedAt))
	}
	tw.Flush()
}

func printPair(w io.Writer, d httpapi.PairDetail) {
	fmt.Fprintf(w, "pair %s (VM %s), generation %d\n", cell(d.Name), cell(d.VMName), d.Generation)
	fmt.Fprintf(w, "  state        %s", cell(d.Phase))
	if d.Paused {
		fmt.Fprint(w, " (paused)")
	}
	fmt.Fprintln(w)
	if d.Degraded != nil {
		fmt.Fprintf(w, "  degraded     since %s: %s\n", d.Degraded.Since.Format(time.RFC3339), text(d.Degraded.Error))
	}
	fmt.Fprintf(w, "  primary      %s group %s\n", side(d.Primary), cell(d.Primary.Group))
	fmt.Fprintf(w, "  replica      %s group %s\n", side(d.Replica), cell(d.Replica.Group))
	fmt.Fprintf(w, "  replication  %s / %s (%s -> %s)\n", cell(orDash(d.Replication.State)), cell(orDash(d.Replication.Health)),
		cell(orDash(d.Replication.PrimaryServer)), cell(orDash(d.Replication.ReplicaServer)))
	fmt.Fprintln(w, "observations:")
	for _, o := range d.Observations {
		desc := cell(o.Status) + " on " + cell(orDash(o.Owner))
		if o.Err != "" {
			desc = "unreachable: " + text(o.Err)
		}
		fmt.Fprintf(w, "  %s/%s: %s (%s, %s)\n", cell(o.Cluster), cell(o.Group), desc, cell(o.Source), o.At.Format(time.RFC3339))
	}
	fmt.Fprintln(w, "operations:")
	for _, op := range d.Operations {
		printSteps(w, op)
	}
}

func printSteps(w io.Writer, op store.Operation) {
	fmt.Fprintf(w, "  #%d %s %s (%s)", op.ID, cell(op.Kind), cell(op.State), text(op.Trigger))
	if op.Error != "" {
		fmt.Fprintf(w, ": %s", text(op.Error))
	}
	fmt.Fprintln(w)
	for _, s := range op.Plan {
		host := s.Host
		if host == "" {
			host = "-"
		}
		fmt.Fprintf(w, "     %d. %-10s %-8s %s", s.Index+1, cell(s.Outcome), cell(host), text(s.Summary))
		if s.Error != "" {
			fmt.Fprintf(w, ": %s", text(s.Error))
		}
		fmt.Fprintln(w)
	}
}

func printOps(w io.Writer, ops []store.Operation) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPAIR\tKIND\tSTATE\tSTARTED\tDURATION\tTRIGGER / ERROR")
	for _, op := range ops {
		dur := "-"
		if !op.Ended.IsZero() {
			dur = op.Ended.Sub(op.Started).Round(time.Millisecond).String()
		}
		detail := op.Trigger
		if op.Error != "" {
			detail = op.Error
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", op.ID, cell(op.Pair), cell(op.Kind), cell(op.State), op.Started.Format(time.RFC3339), dur, text(detail))
	}
	tw.Flush()
}
