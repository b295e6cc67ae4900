package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
)

// Exit codes of hvro hook (CONTRACTS.md section 2). ECX treats non-zero
// as a failure of the script resource.
const (
	hookOK          = 0 // converged, degraded with the VM where it should be, or hvro unreachable (fail-open)
	hookCannotHost  = 1 // this node cannot host the VM: ECX should try another node
	hookUsage       = 2 // usage or configuration error
	hookUnreachable = 3 // hvro unreachable and --strict
)

type hookAnswer struct {
	Outcome string `json:"outcome"`
	Op      uint64 `json:"op"`
	Message string `json:"message"`
	Pairs   []struct {
		Pair, Outcome, Message string
	} `json:"pairs"`
	Error *struct {
		Code, Message string
	} `json:"error"`
}

// Hook is hvro hook: what an ECX start.bat or stop.bat runs. It prints one
// line for the ECX log and returns the exit code ECX acts on.
func Hook(args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvro hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := fs.String("url", "", "hvro's API, e.g. https://hvro.corp.example:8443")
	cluster := fs.String("cluster", "", "the ECX cluster this script belongs to")
	group := fs.String("group", "", "the failover group")
	phase := fs.String("phase", "", "start or stop")
	tokenFile := fs.String("token-file", "", "file holding this cluster's hook token")
	server := fs.String("server", "", "this server's ECX name (default COMPUTERNAME, then the host name)")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for the outcome (keep it well inside the script timeout)")
	strict := fs.Bool("strict", false, "exit 3 instead of 0 when hvro cannot be reached")
	caFile := fs.String("ca-file", "", "PEM CA to verify hvro's https certificate")
	insecure := fs.Bool("insecure-skip-verify", false, "do not verify hvro's https certificate")
	retryFor := fs.Duration("retry-for", 20*time.Second, "how long to keep trying when hvro cannot be reached")
	if err := fs.Parse(args); err != nil {
		return hookUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdout, "hvro hook: usage error: "+format+"\n", a...)
		return hookUsage
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *u == "":
		return fail("--url is required")
	case *cluster == "" || *group == "":
		return fail("--cluster and --group are required")
	case *phase != "start" && *phase != "stop":
		return fail("--phase %q: want start or stop", *phase)
	case *tokenFile == "":
		return fail("--token-file is required")
	case *wait < 0 || *wait > 30*time.Minute:
		return fail("--wait %s: want 0 to 30m", *wait)
	}
	base, err := url.Parse(*u)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fail("--url %q is not an http(s) URL", *u)
	}
	token, err := config.ReadSecretFile(*tokenFile)
	if err != nil {
		return fail("--token-file: %v", err)
	}
	if *server == "" {
		*server = env("COMPUTERNAME")
	}
	if *server == "" {
		*server, _ = os.Hostname()
	}
	if *server == "" {
		return fail("cannot tell this server's name: pass --server")
	}
	client, err := HTTPClient(*caFile, *insecure, *wait+30*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	body, _ := json.Marshal(map[string]string{
		"cluster": *cluster, "group": *group, "server": *server, "phase": *phase,
		"event": env("CLP_EVENT"), "factor": env("CLP_FACTOR"), "disk": env("CLP_DISK"),
	})
	target := strings.TrimRight(base.String(), "/") + "/v1/hooks?wait=" + url.QueryEscape(wait.String())
	what := fmt.Sprintf("%s %s/%s on %s (event %s, factor %s)", *phase, *cluster, *group, *server, orDash(env("CLP_EVENT")), orDash(env("CLP_FACTOR")))

	var ans hookAnswer
	var status int
	deadline := time.Now().Add(*retryFor)
	for attempt := 1; ; attempt++ {
		status, err = postJSON(client, target, token, body, &ans)
		if err == nil && status != http.StatusServiceUnavailable && status != http.StatusBadGateway {
			break
		}
		if time.Now().After(deadline) {
			reason := fmt.Sprint(err)
			if err == nil {
				reason = fmt.Sprintf("HTTP %d", status)
			}
			if *strict {
				fmt.Fprintf(stdout, "hvro hook: %s: hvro unreachable after %d attempts (%s); --strict: exit 3\n", what, attempt, reason)
				return hookUnreachable
			}
			fmt.Fprintf(stdout, "hvro hook: %s: hvro unreachable after %d attempts (%s); failing open: exit 0\n", what, attempt, reason)
			return hookOK
		}
		time.Sleep(min(time.Duration(attempt)*time.Second, 5*time.Second))
	}
	if status != http.StatusOK {
		msg := fmt.Sprintf("HTTP %d", status)
		if ans.Error != nil {
			msg = fmt.Sprintf("%s (%s)", ans.Error.Message, ans.Error.Code)
		}
		fmt.Fprintf(stdout, "hvro hook: %s: rejected: %s\n", what, msg)
		return hookUsage
	}
	line := fmt.Sprintf("hvro hook: %s: %s", what, ans.Outcome)
	if ans.Op != 0 {
		line += fmt.Sprintf(" (op %d)", ans.Op)
	}
	if ans.Message != "" {
		line += ": " + ans.Message
	}
	fmt.Fprintln(stdout, line)
	if ans.Outcome == "failed" && *phase == "start" {
		return hookCannotHost
	}
	return hookOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func postJSON(c *http.Client, target, token string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("answer is not JSON (HTTP %d): %.100q", resp.StatusCode, data)
	}
	return resp.StatusCode, nil
}
