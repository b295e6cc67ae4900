package cli

import (
	"errors"
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
	api := &apiClient{base: strings.TrimRight(base.String(), "/"), token: token, http: client}
	body := map[string]string{
		"cluster": *cluster, "group": *group, "server": *server, "phase": *phase,
		"event": env("CLP_EVENT"), "factor": env("CLP_FACTOR"), "disk": env("CLP_DISK"),
	}
	path := "/v1/hooks?wait=" + url.QueryEscape(wait.String())
	// The line goes to the ECX log and terminals: every field is escaped
	// and bounded (the server name and CLP_* come from the environment,
	// hvro's message may quote what ECX and the hosts said).
	what := fmt.Sprintf("%s %s/%s on %s (event %s, factor %s)", *phase, cell(*cluster), cell(*group), cell(*server), cell(orDash(env("CLP_EVENT"))), cell(orDash(env("CLP_FACTOR"))))

	var ans hookAnswer
	var rejected *apiError
	deadline := time.Now().Add(*retryFor)
	for attempt := 1; ; attempt++ {
		ans = hookAnswer{}
		err = api.do(http.MethodPost, path, body, &ans)
		if errors.Is(err, errRedirect) {
			fmt.Fprintf(stdout, "hvro hook: %s: misconfigured --url: %s\n", what, text(err.Error()))
			return hookUsage
		}
		if err == nil || errors.As(err, &rejected) && !unavailable(rejected.Status) {
			break // hvro answered, or rejected the request itself
		}
		left := time.Until(deadline)
		if left <= 0 {
			reason := text(err.Error())
			if *strict {
				fmt.Fprintf(stdout, "hvro hook: %s: hvro unreachable after %d attempts (%s); --strict: exit 3\n", what, attempt, reason)
				return hookUnreachable
			}
			fmt.Fprintf(stdout, "hvro hook: %s: hvro unreachable after %d attempts (%s); failing open: exit 0\n", what, attempt, reason)
			return hookOK
		}
		delay := min(time.Duration(attempt)*time.Second, 5*time.Second)
		if errors.As(err, &rejected) && rejected.RetryAfter > 0 {
			delay = min(rejected.RetryAfter, maxRetryAfter)
		}
		time.Sleep(min(delay, left))
	}
	if err != nil {
		fmt.Fprintf(stdout, "hvro hook: %s: rejected: %s (%s, HTTP %d)\n", what, text(rejected.Message), cell(rejected.Code), rejected.Status)
		return hookUsage
	}
	line := fmt.Sprintf("hvro hook: %s: %s", what, cell(ans.Outcome))
	if ans.Op != 0 {
		line += fmt.Sprintf(" (op %d)", ans.Op)
	}
	if ans.Message != "" {
		line += ": " + text(ans.Message)
	}
	fmt.Fprintln(stdout, line)
	if ans.Outcome == "failed" && *phase == "start" {
		return hookCannotHost
	}
	return hookOK
}

// maxRetryAfter bounds how long one Retry-After may hold the hook back.
const maxRetryAfter = 30 * time.Second

// unavailable reports answers that say hvro cannot serve now rather than
// that the request is wrong: a server error (its disk is full, a
// dependency failed), a gateway or proxy that cannot reach it, a timeout,
// or too many requests. The hook treats them like an unreachable hvro:
// retry, then fail open, because ECX may shut a server down when a stop
// script fails.
func unavailable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
