package replica

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Every script the driver sends is built here: a fixed header, a block of
// parameters (the only place a value from outside appears, always as a
// single-quoted PowerShell literal, a validated number or $true/$false),
// a fixed body per operation and a fixed catch block. Bodies never splice
// values into code; they read the parameters as variables.
//
// Contract of every script (Windows PowerShell 5.1 syntax only):
//   - success: the last line of stdout is one compact JSON object, exit 0;
//   - failure: {"error":{"type","message","hresult","fqid","category"}} and exit 1;
//   - errors the script raises itself carry a "[hvro:<reason>] " prefix.

const scriptHead = `$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
`

const scriptTail = `} catch {
  $e = $_
  [pscustomobject]@{ error = [ordered]@{ type = $e.Exception.GetType().FullName; message = $e.Exception.Message; hresult = $e.Exception.HResult; fqid = $e.FullyQualifiedErrorId; category = [string]$e.CategoryInfo.Category } } | ConvertTo-Json -Compress -Depth 3
  exit 1
}
`

// findVM matches the name exactly (Get-VM -Name would treat [ ] * ? as
// wildcards) and case-insensitively, as Hyper-V compares names.
const findVM = `  $v = @(Get-VM | Where-Object { $_.Name -eq $n })
  if ($v.Count -gt 1) { throw ('[hvro:ambiguous_name] ' + $v.Count + ' virtual machines are named "' + $n + '"') }
`

// needVM follows findVM in every action: the VM must exist.
const needVM = `  if ($v.Count -eq 0) { throw ('[hvro:vm_not_found] no virtual machine is named "' + $n + '"') }
  $v = $v[0]
  $m = [string]$v.ReplicationMode
  $s = [string]$v.ReplicationState
  $res = 'done'
`

const printResult = `  [ordered]@{ result = $res } | ConvertTo-Json -Compress
`

// Bodies, one per operation. Each is idempotent where the driver's API
// says so: it checks the state first and reports 'already'.
const (
	bodyInspect = `  $vo = $null
  $ro = $null
  if ($v.Count -eq 1) {
    $v = $v[0]
    $vo = [ordered]@{ name = $v.Name; id = [string]$v.Id; state = [string]$v.State; path = [string]$v.Path }
    if ([string]$v.ReplicationMode -ne 'None') {
      $r = @(Get-VMReplication -VM $v)[0]
      $t = $null
      if ($r.LastReplicationTime) { $t = $r.LastReplicationTime.ToUniversalTime().ToString('o') }
      $ro = [ordered]@{ mode = [string]$r.ReplicationMode; state = [string]$r.ReplicationState; health = [string]$r.ReplicationHealth; primary = [string]$r.PrimaryServerName; replica = [string]$r.ReplicaServerName; port = $r.ReplicaServerPort; auth = [string]$r.AuthenticationType; frequency = $r.ReplicationFrequencySec; last = $t }
    }
  }
  [ordered]@{ vm = $vo; replication = $ro } | ConvertTo-Json -Compress -Depth 4
`

	// Start-VM fails with 0x80070002 (file not found) when the saved-state
	// files the configuration references are gone (the host crashed):
	// discard the saved state and start again. Only a Saved VM qualifies,
	// so a missing disk image never costs a valid saved state.
	bodyStartVM = `  $d = $false
  if (@('Running', 'Starting') -contains [string]$v.State) { $res = 'already' } else {
    try { Start-VM -VM $v } catch {
      if ([string]$v.State -ne 'Saved' -or ($_.Exception.HResult -ne -2147024894 -and $_.Exception.Message -notlike '*(0x80070002)*')) { throw }
      Remove-VMSavedState -VM $v
      $d = $true
      Start-VM -VM $v
    }
  }
  [ordered]@{ result = $res; discarded = $d } | ConvertTo-Json -Compress
`

	// Stop bodies, one per StopMode. -TurnOff comes with -Force, which
	// only keeps Stop-VM from asking for confirmation (a prompt fails on a
	// non-interactive host).
	bodyStopShutdown = `  if (@('Off', 'Saved', 'OffCritical', 'SavedCritical') -contains [string]$v.State) { $res = 'already' } else { Stop-VM -VM $v }
` + printResult

	bodyStopForce = `  if (@('Off', 'Saved', 'OffCritical', 'SavedCritical') -contains [string]$v.State) { $res = 'already' } else { Stop-VM -VM $v -Force }
` + printResult

	bodyStopTurnOff = `  if (@('Off', 'Saved', 'OffCritical', 'SavedCritical') -contains [string]$v.State) { $res = 'already' } else { Stop-VM -VM $v -TurnOff -Force }
` + printResult

	// Register in place; if the import is refused, ask Compare-VM why:
	// missing saved-state (40004) and memory (40006) files are repaired by
	// discarding the saved state, anything else is reported.
	bodyRegister = `  $res = 'already'
  $fix = ''
  if ($v.Count -eq 0) {
    $res = 'done'
    try { $null = Import-VM -Path $p } catch {
      $ie = $_
      $c = $null
      try { $c = Compare-VM -Path $p } catch { throw $ie }
      $inc = @($c.Incompatibilities)
      if ($inc.Count -eq 0) { throw $ie }
      $bad = @($inc | Where-Object { @(40004, 40006) -notcontains $_.MessageId })
      if ($bad.Count -gt 0) { throw ('[hvro:incompatible] ' + ((@($bad | ForEach-Object { [string]$_.MessageId + ' ' + $_.Message })) -join '; ')) }
      $inc[0].Source | Remove-VMSavedState
      $null = Import-VM -CompatibilityReport $c
      $fix = (@($inc | ForEach-Object { [string]$_.MessageId })) -join ','
    }
  }
  [ordered]@{ result = $res; repaired = $fix } | ConvertTo-Json -Compress
`

	bodyEnableReplica = `  if ($m -eq 'Replica' -and @('WaitingForInitialReplication', 'Replicating') -contains $s) { $res = 'already' } else { Enable-VMReplication -VM $v -AsReplica }
` + printResult

	// enablePrimary and reverse take the settings from $rh $port $auth
	// $tp $freq $comp; a thumbprint is passed only for Certificate.
	bodyEnablePrimary = `  $cur = ''
  if ($m -eq 'Primary') { $cur = [string]@(Get-VMReplication -VM $v)[0].ReplicaServerName }
  if ($cur -and $cur.Split('.')[0] -eq $rh.Split('.')[0]) { $res = 'already' }
  elseif ($auth -eq 'Certificate') { Enable-VMReplication -VM $v -ReplicaServerName $rh -ReplicaServerPort $port -AuthenticationType $auth -CertificateThumbprint $tp -ReplicationFrequencySec $freq -CompressionEnabled $comp }
  else { Enable-VMReplication -VM $v -ReplicaServerName $rh -ReplicaServerPort $port -AuthenticationType $auth -ReplicationFrequencySec $freq -CompressionEnabled $comp }
` + printResult

	bodyStartInitial = `  if ($m -eq 'Primary' -and @('InitialReplicationInProgress', 'Replicating') -contains $s) { $res = 'already' } else { Start-VMInitialReplication -VM $v }
` + printResult

	bodyStartInitialBackup = `  if ($m -eq 'Primary' -and @('InitialReplicationInProgress', 'Replicating') -contains $s) { $res = 'already' } else { Start-VMInitialReplication -VM $v -UseBackup }
` + printResult

	bodyResume = `  if (@('Replicating', 'Resynchronizing') -contains $s) { $res = 'already' } else { Resume-VMReplication -VM $v }
` + printResult

	bodyResumeResync = `  if (@('Replicating', 'Resynchronizing') -contains $s) { $res = 'already' } else { Resume-VMReplication -VM $v -Resynchronize }
` + printResult

	bodyRemove = `  if ($m -eq 'None') { $res = 'already' } else { Remove-VMReplication -VM $v }
` + printResult

	bodyPrepareFailover = `  if ($m -eq 'Primary' -and $s -eq 'PreparedForFailover') { $res = 'already' } else { Start-VMFailover -VM $v -Prepare -Confirm:$false }
` + printResult

	bodyFailover = `  if ($m -eq 'Replica' -and @('FailedOverWaitingCompletion', 'FailedOver') -contains $s) { $res = 'already' } else { Start-VMFailover -VM $v -Confirm:$false }
` + printResult

	// bodyCancelFailover undoes a failover that stopped half-way: a
	// primary left prepared (it cannot start so) or a replica left failed
	// over and waiting for completion.
	bodyCancelFailover = `  if (($m -eq 'Primary' -and $s -eq 'PreparedForFailover') -or ($m -eq 'Replica' -and $s -eq 'FailedOverWaitingCompletion')) { Stop-VMFailover -VM $v } else { $res = 'already' }
` + printResult

	bodyCompleteFailover = `  if ($m -eq 'Replica' -and $s -eq 'FailedOver') { $res = 'already' } else { Complete-VMFailover -VM $v -Confirm:$false }
` + printResult

	bodyReverse = `  $cur = ''
  if ($m -eq 'Primary') { $cur = [string]@(Get-VMReplication -VM $v)[0].ReplicaServerName }
  if ($cur -and $cur.Split('.')[0] -eq $rh.Split('.')[0]) { $res = 'already' }
  elseif ($auth -eq 'Certificate') { Set-VMReplication -VM $v -Reverse -ReplicaServerName $rh -ReplicaServerPort $port -AuthenticationType $auth -CertificateThumbprint $tp -ReplicationFrequencySec $freq -CompressionEnabled $comp }
  else { Set-VMReplication -VM $v -Reverse -ReplicaServerName $rh -ReplicaServerPort $port -AuthenticationType $auth -ReplicationFrequencySec $freq -CompressionEnabled $comp }
` + printResult
)

var stopBodies = map[StopMode]string{StopShutdown: bodyStopShutdown, StopForce: bodyStopForce, StopTurnOff: bodyStopTurnOff}

// identityScript reads the host's own names: what Hyper-V Replica reports
// for it as a primary server (FullyQualifiedDomainName) and its computer
// name. It takes no input.
const identityScript = scriptHead + `  $h = @(Get-VMHost)[0]
  [ordered]@{ computer = [string]$h.ComputerName; fqdn = [string]$h.FullyQualifiedDomainName } | ConvertTo-Json -Compress
` + scriptTail

// Script is one rendered script, for the golden files and the parser check.
type Script struct {
	Name string // stable file name part: "start_vm"
	Text string
}

// ScriptInput is what Scripts renders every script with.
type ScriptInput struct {
	VM          string
	ConfigPath  string
	ReplicaHost string
	Settings    Settings
}

// Scripts renders every script the driver can emit, with in's values.
func Scripts(in ScriptInput) ([]Script, error) {
	type gen struct {
		name string
		f    func() (string, error)
	}
	cert := in.Settings
	cert.Auth = "Certificate"
	if cert.Thumbprint == "" {
		cert.Thumbprint = strings.Repeat("AB", 20)
	}
	kerb := in.Settings
	kerb.Auth, kerb.Thumbprint = "Kerberos", ""
	gens := []gen{
		{"inspect", func() (string, error) { return inspectScript(in.VM) }},
		{"identity", func() (string, error) { return identityScript, nil }},
		{"start_vm", func() (string, error) { return actionScript(in.VM, bodyStartVM) }},
		{"stop_vm_shutdown", func() (string, error) { return actionScript(in.VM, bodyStopShutdown) }},
		{"stop_vm_force", func() (string, error) { return actionScript(in.VM, bodyStopForce) }},
		{"stop_vm_turnoff", func() (string, error) { return actionScript(in.VM, bodyStopTurnOff) }},
		{"register", func() (string, error) { return registerScript(in.VM, in.ConfigPath) }},
		{"enable_replica", func() (string, error) { return actionScript(in.VM, bodyEnableReplica) }},
		{"enable_primary_kerberos", func() (string, error) { return settingsScript(in.VM, in.ReplicaHost, kerb, bodyEnablePrimary) }},
		{"enable_primary_certificate", func() (string, error) { return settingsScript(in.VM, in.ReplicaHost, cert, bodyEnablePrimary) }},
		{"start_initial_replication", func() (string, error) { return actionScript(in.VM, bodyStartInitial) }},
		{"start_initial_replication_backup", func() (string, error) { return actionScript(in.VM, bodyStartInitialBackup) }},
		{"resume_replication", func() (string, error) { return actionScript(in.VM, bodyResume) }},
		{"resume_replication_resync", func() (string, error) { return actionScript(in.VM, bodyResumeResync) }},
		{"remove_replication", func() (string, error) { return actionScript(in.VM, bodyRemove) }},
		{"prepare_failover", func() (string, error) { return actionScript(in.VM, bodyPrepareFailover) }},
		{"failover", func() (string, error) { return actionScript(in.VM, bodyFailover) }},
		{"complete_failover", func() (string, error) { return actionScript(in.VM, bodyCompleteFailover) }},
		{"cancel_failover", func() (string, error) { return actionScript(in.VM, bodyCancelFailover) }},
		{"reverse_kerberos", func() (string, error) { return settingsScript(in.VM, in.ReplicaHost, kerb, bodyReverse) }},
		{"reverse_certificate", func() (string, error) { return settingsScript(in.VM, in.ReplicaHost, cert, bodyReverse) }},
	}
	out := make([]Script, 0, len(gens))
	for _, g := range gens {
		text, err := g.f()
		if err != nil {
			return nil, fmt.Errorf("script %s: %w", g.name, err)
		}
		out = append(out, Script{Name: g.name, Text: text})
	}
	return out, nil
}

// param is one "$name = value" line of a script's parameter block.
type param struct{ name, value string }

func render(params []param, body string) string {
	var b strings.Builder
	b.Grow(len(scriptHead) + len(body) + len(scriptTail) + 256)
	b.WriteString(scriptHead)
	for _, p := range params {
		b.WriteString("  $")
		b.WriteString(p.name)
		b.WriteString(" = ")
		b.WriteString(p.value)
		b.WriteString("\n")
	}
	b.WriteString(body)
	b.WriteString(scriptTail)
	return b.String()
}

func inspectScript(vm string) (string, error) {
	n, err := quoteValue("vm name", vm, 100)
	if err != nil {
		return "", err
	}
	return render([]param{{"n", n}}, findVM+bodyInspect), nil
}

func actionScript(vm, body string) (string, error) {
	n, err := quoteValue("vm name", vm, 100)
	if err != nil {
		return "", err
	}
	return render([]param{{"n", n}}, findVM+needVM+body), nil
}

func registerScript(vm, configPath string) (string, error) {
	n, err := quoteValue("vm name", vm, 100)
	if err != nil {
		return "", err
	}
	p, err := quoteValue("config path", configPath, 1024)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(strings.ToLower(configPath), ".vmcx") && !strings.HasSuffix(strings.ToLower(configPath), ".xml") {
		return "", fmt.Errorf("config path %q: not a .vmcx (or .xml) virtual machine configuration file", configPath)
	}
	return render([]param{{"n", n}, {"p", p}}, findVM+bodyRegister), nil
}

func settingsScript(vm, replicaHost string, s Settings, body string) (string, error) {
	n, err := quoteValue("vm name", vm, 100)
	if err != nil {
		return "", err
	}
	if err := checkHostName(replicaHost); err != nil {
		return "", err
	}
	s, err = s.normalize()
	if err != nil {
		return "", err
	}
	rh, _ := quoteValue("replica host", replicaHost, 255)
	tp := "''"
	if s.Thumbprint != "" {
		tp = psQuote(s.Thumbprint)
	}
	params := []param{
		{"n", n},
		{"rh", rh},
		{"port", strconv.Itoa(s.Port)},
		{"auth", psQuote(s.Auth)},
		{"tp", tp},
		{"freq", strconv.Itoa(s.FrequencySec)},
		{"comp", psBool(s.Compression)},
	}
	return render(params, findVM+needVM+body), nil
}

// psQuote makes s a PowerShell single-quoted literal. Inside one, only a
// quote character is special; PowerShell treats the typographic single
// quotes U+2018..U+201B as quotes too, so each of them is doubled as well
// (as its own CodeGeneration.EscapeSingleQuotedStringContent does).
func psQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		b.WriteRune(r)
		if isSingleQuote(r) {
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func isSingleQuote(r rune) bool { return r == '\'' || r >= '\u2018' && r <= '\u201b' }

// quoteValue checks a value that goes into a script and quotes it.
// Control characters are refused: no VM name or path has them, and a
// newline or NUL has no business in a command line.
func quoteValue(what, s string, maxLen int) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("%s is empty", what)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%s %q is not valid UTF-8", what, s)
	case utf8.RuneCountInString(s) > maxLen:
		return "", fmt.Errorf("%s %.40q...: longer than %d characters", what, s, maxLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029' {
			return "", fmt.Errorf("%s %q contains the control character %U", what, s, r)
		}
	}
	return psQuote(s), nil
}

func psBool(b bool) string {
	if b {
		return "$true"
	}
	return "$false"
}

var hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// checkHostName accepts a DNS or NetBIOS host name (Hyper-V refuses IP
// addresses as Replica server names).
func checkHostName(h string) error {
	if h == "" {
		return fmt.Errorf("replica host name is empty")
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return fmt.Errorf("replica host %q: Hyper-V needs a host name, not an IP address", h)
	}
	if len(h) > 253 {
		return fmt.Errorf("replica host %.40q...: longer than 253 characters", h)
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostLabel.MatchString(l) {
			return fmt.Errorf("replica host %q is not a valid host name", h)
		}
	}
	return nil
}

// Settings are the replication settings of EnablePrimary and Reverse.
type Settings struct {
	Port         int    // 0 = 80 for Kerberos, 443 for Certificate
	Auth         string // Kerberos (default) or Certificate
	Thumbprint   string // required for Certificate, refused for Kerberos
	FrequencySec int    // 30, 300 or 900; 0 = 300
	Compression  bool
}

var thumbprint = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)

// normalize applies defaults and Hyper-V's rules, so that bad settings fail
// here, named, instead of on the host.
func (s Settings) normalize() (Settings, error) {
	switch strings.ToLower(s.Auth) {
	case "", "kerberos":
		s.Auth = "Kerberos"
	case "certificate":
		s.Auth = "Certificate"
	default:
		return s, fmt.Errorf("replication authentication %q: must be Kerberos or Certificate", s.Auth)
	}
	if s.Port == 0 {
		s.Port = 80
		if s.Auth == "Certificate" {
			s.Port = 443
		}
	}
	if s.Port < 1 || s.Port > 65535 {
		return s, fmt.Errorf("replication port %d: must be between 1 and 65535", s.Port)
	}
	switch s.FrequencySec {
	case 0:
		s.FrequencySec = 300
	case 30, 300, 900:
	default:
		return s, fmt.Errorf("replication frequency %ds: Hyper-V accepts 30, 300 or 900 seconds", s.FrequencySec)
	}
	s.Thumbprint = strings.ReplaceAll(s.Thumbprint, " ", "")
	switch {
	case s.Auth == "Certificate" && s.Thumbprint == "":
		return s, fmt.Errorf("replication certificate_thumbprint: required for Certificate authentication")
	case s.Auth == "Kerberos" && s.Thumbprint != "":
		return s, fmt.Errorf("replication certificate_thumbprint: only for Certificate authentication, not Kerberos")
	case s.Thumbprint != "" && !thumbprint.MatchString(s.Thumbprint):
		return s, fmt.Errorf("replication certificate_thumbprint %q: must be 40 hexadecimal digits", s.Thumbprint)
	}
	return s, nil
}
