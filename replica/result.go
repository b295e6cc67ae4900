package replica

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hvro/hvro/hostname"
)

// View is what one host shows for a VM: nil VM = not registered (or not
// listed), nil Replication = replication not enabled.
type View struct {
	VM          *VM
	Replication *Replication
}

// VM is a VM as Get-VM shows it.
type VM struct {
	Name, ID string
	// State is the enum name Get-VM shows: Running, Off, Saved, Paused,
	// OffCritical, PausedCritical, ...
	State string
	// Running: the VM executes on this host (Running or Starting, also in
	// their *Critical variants).
	Running bool
	// Critical: a *Critical state, the host cannot reach the VM's storage
	// (its disk moved away).
	Critical bool
	Path     string // the VM's folder
}

// Replication is one half of a replication relationship as
// Get-VMReplication shows it.
type Replication struct {
	Mode   string // Primary, Replica, ...
	State  string // ReadyForInitialReplication, Replicating, Error, ...
	Health string // Normal, Warning, Critical, NotApplicable
	// PrimaryServer and ReplicaServer are short lower-case host names
	// ("node1") derived from the names Hyper-V reports.
	PrimaryServer, ReplicaServer string
	// PrimaryFQDN and ReplicaFQDN are the names exactly as Hyper-V reports
	// them: the primary by its own identity (computer name and domain,
	// "NODE1.corp.example"), the Replica server as Enable-VMReplication
	// (or -Reverse) was given it, which may be a short name or an alias.
	PrimaryFQDN, ReplicaFQDN string
	Port                     int
	Auth                     string // Kerberos or Certificate
	FrequencySec             int
	LastReplication          time.Time // zero when never
}

// parseResult reads what a script printed: the last non-empty line of
// stdout must be one JSON object. It returns the success object, or the
// script's error object, or an error saying what was wrong with the output.
// A non-zero exit code without an error object is bad output too.
func parseResult(stdout []byte, exit int) (obj []byte, se *scriptError, err error) {
	line := lastLine(stdout)
	if len(line) == 0 {
		if exit != 0 {
			return nil, nil, fmt.Errorf("exit code %d and no JSON on stdout", exit)
		}
		return nil, nil, errors.New("no JSON on stdout")
	}
	if line[0] != '{' {
		return nil, nil, fmt.Errorf("exit code %d and stdout does not end with a JSON object", exit)
	}
	var probe struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, nil, fmt.Errorf("exit code %d and the JSON on stdout is not valid: %v", exit, err)
	}
	if len(probe.Error) > 0 && !bytes.Equal(probe.Error, []byte("null")) {
		var raw struct {
			Type     flexString `json:"type"`
			Message  flexString `json:"message"`
			HResult  flexInt    `json:"hresult"`
			FQID     flexString `json:"fqid"`
			Category flexString `json:"category"`
		}
		if err := json.Unmarshal(probe.Error, &raw); err != nil {
			return nil, nil, fmt.Errorf("exit code %d and the error object is not valid: %v", exit, err)
		}
		return nil, &scriptError{Type: string(raw.Type), Message: string(raw.Message), FQID: string(raw.FQID),
			Category: string(raw.Category), HResult: hresult(int64(raw.HResult))}, nil
	}
	if exit != 0 {
		return nil, nil, fmt.Errorf("exit code %d without an error object", exit)
	}
	return line, nil, nil
}

// lastLine returns the last non-blank line of out, without a BOM.
func lastLine(out []byte) []byte {
	out = bytes.TrimPrefix(out, []byte("\xef\xbb\xbf"))
	out = bytes.TrimRight(out, " \t\r\n")
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	return bytes.TrimSpace(bytes.TrimPrefix(out, []byte("\xef\xbb\xbf")))
}

// hresult normalises an HResult to its signed 32-bit value (hosts may
// report 0x80070002 as 2147942402 or -2147024894).
func hresult(v int64) int64 {
	if v > math.MaxInt32 && v <= math.MaxUint32 {
		return int64(int32(uint32(v)))
	}
	return v
}

// flexString accepts a JSON string, number, boolean or null.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*s = ""
		return nil
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return fmt.Errorf("want a string, got %.20s", b)
	}
	*s = flexString(b)
	return nil
}

// flexInt accepts a JSON number (integral), a numeric string or null.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return fmt.Errorf("want an integer, got %.20s", b)
		}
		v = int64(f)
	}
	*n = flexInt(v)
	return nil
}

// inspectJSON is the inspect script's output.
type inspectJSON struct {
	VM *struct {
		Name  flexString `json:"name"`
		ID    flexString `json:"id"`
		State flexString `json:"state"`
		Path  flexString `json:"path"`
	} `json:"vm"`
	Replication *struct {
		Mode      flexString `json:"mode"`
		State     flexString `json:"state"`
		Health    flexString `json:"health"`
		Primary   flexString `json:"primary"`
		Replica   flexString `json:"replica"`
		Port      flexInt    `json:"port"`
		Auth      flexString `json:"auth"`
		Frequency flexInt    `json:"frequency"`
		Last      flexString `json:"last"`
	} `json:"replication"`
}

// parseInspect turns the inspect script's JSON into a View.
func parseInspect(obj []byte) (View, error) {
	var in inspectJSON
	if err := json.Unmarshal(obj, &in); err != nil {
		return View{}, fmt.Errorf("inspect output: %v", err)
	}
	var v View
	if in.VM == nil {
		if in.Replication != nil {
			return View{}, errors.New("inspect output: replication without a vm")
		}
		return v, nil
	}
	vm := &VM{Name: string(in.VM.Name), ID: strings.ToLower(string(in.VM.ID)), State: string(in.VM.State), Path: string(in.VM.Path)}
	switch {
	case vm.Name == "":
		return View{}, errors.New("inspect output: vm.name is empty")
	case vm.State == "":
		return View{}, errors.New("inspect output: vm.state is empty")
	}
	vm.Critical = strings.HasSuffix(vm.State, "Critical")
	base := strings.TrimSuffix(vm.State, "Critical")
	vm.Running = base == "Running" || base == "Starting"
	v.VM = vm
	if r := in.Replication; r != nil {
		rep := &Replication{Mode: string(r.Mode), State: string(r.State), Health: string(r.Health),
			PrimaryFQDN: strings.TrimSpace(string(r.Primary)), ReplicaFQDN: strings.TrimSpace(string(r.Replica)),
			Port: int(r.Port), Auth: string(r.Auth), FrequencySec: int(r.Frequency)}
		if rep.Mode == "" || rep.State == "" {
			return View{}, errors.New("inspect output: replication.mode or replication.state is empty")
		}
		if r.Port < 0 || r.Port > 65535 {
			return View{}, fmt.Errorf("inspect output: replication.port %d is not a port", r.Port)
		}
		if r.Frequency < 0 || r.Frequency > math.MaxInt32 {
			return View{}, fmt.Errorf("inspect output: replication.frequency %d is not valid", r.Frequency)
		}
		rep.PrimaryServer, rep.ReplicaServer = hostname.Short(rep.PrimaryFQDN), hostname.Short(rep.ReplicaFQDN)
		t, err := parseTime(string(r.Last))
		if err != nil {
			return View{}, fmt.Errorf("inspect output: replication.last: %v", err)
		}
		rep.LastReplication = t
		v.Replication = rep
	}
	return v, nil
}

var msDate = regexp.MustCompile(`^/Date\((-?\d+)(?:[+-]\d{4})?\)/$`)

// parseTime reads the scripts' ISO 8601 times (and, tolerantly, Windows
// PowerShell's "/Date(ms)/" form); the zero time, year 1, means never.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if m := msDate.FindStringSubmatch(s); m != nil {
		ms, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || ms < -62135596800000 || ms > 253402300799999 {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		if ms <= -62135596800000 {
			return time.Time{}, nil
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	var t time.Time
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999"} {
		if t, err = time.Parse(layout, s); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", s)
	}
	if t.Year() <= 1 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// parseIdentity reads the identity script's output: both names must be
// host names.
func parseIdentity(obj []byte) (Identity, error) {
	var in struct {
		Computer flexString `json:"computer"`
		FQDN     flexString `json:"fqdn"`
	}
	if err := json.Unmarshal(obj, &in); err != nil {
		return Identity{}, fmt.Errorf("identity output: %v", err)
	}
	id := Identity{ComputerName: strings.TrimSpace(string(in.Computer)), FQDN: strings.TrimSuffix(strings.TrimSpace(string(in.FQDN)), ".")}
	if err := checkHostName(id.FQDN); err != nil {
		return Identity{}, fmt.Errorf("identity output: fqdn: %v", err)
	}
	if err := checkHostName(id.ComputerName); err != nil || strings.Contains(id.ComputerName, ".") {
		return Identity{}, fmt.Errorf("identity output: computer name %q is not a host name", id.ComputerName)
	}
	return id, nil
}

// actionJSON is what action scripts print.
type actionJSON struct {
	Result    flexString `json:"result"`
	Discarded bool       `json:"discarded"`
	Repaired  flexString `json:"repaired"`
}

func parseAction(obj []byte) (actionJSON, error) {
	var a actionJSON
	if err := json.Unmarshal(obj, &a); err != nil {
		return a, fmt.Errorf("action output: %v", err)
	}
	switch a.Result {
	case resultDone, resultAlready:
		return a, nil
	}
	return a, fmt.Errorf("action output: result %q is neither %q nor %q", a.Result, resultDone, resultAlready)
}

// Results action scripts report.
const (
	resultDone    = "done"    // the change was made
	resultAlready = "already" // nothing to do: the host was already there
)

// parseIDs reads "40004,40006".
func parseIDs(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a list of message ids", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// excerpt is a short, printable piece of unexpected output for an error:
// the end of stdout, or else the first lines of stderr (CLIXML decoded).
func excerpt(stdout, stderr []byte) string {
	s := strings.TrimSpace(string(stdout))
	if s == "" {
		s = strings.TrimSpace(clixmlText(stderr))
	}
	const n = 300
	if len(s) > n {
		s = s[len(s)-n:]
		for !utf8.RuneStart(s[0]) && len(s) > 1 {
			s = s[1:]
		}
		s = "..." + s
	}
	return strings.ToValidUTF8(s, "?")
}

var clixmlString = regexp.MustCompile(`<S S="(?:Error|Warning)">([^<]*)</S>`)

// clixmlText extracts the error and warning lines powershell.exe writes to
// a redirected stderr as CLIXML; other text is returned as it is.
func clixmlText(stderr []byte) string {
	s := string(stderr)
	if !strings.HasPrefix(s, "#< CLIXML") {
		return s
	}
	var b strings.Builder
	for _, m := range clixmlString.FindAllStringSubmatch(s, 20) {
		t := strings.NewReplacer("_x000D__x000A_", "\n", "_x000A_", "\n", "_x000D_", "", "&lt;", "<", "&gt;", ">", "&amp;", "&", "&quot;", `"`, "&apos;", "'").Replace(m[1])
		b.WriteString(t)
	}
	return b.String()
}
