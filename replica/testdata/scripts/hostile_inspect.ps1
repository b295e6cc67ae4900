$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
  $n = 'a''b; Remove-VM -Name * -Force #$env:X `" $(whoami) [x]*? ‘‘’’ ’’; exit 0 '''
  $v = @(Get-VM | Where-Object { $_.Name -eq $n })
  if ($v.Count -gt 1) { throw ('[hvro:ambiguous_name] ' + $v.Count + ' virtual machines are named "' + $n + '"') }
  $vo = $null
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
} catch {
  $e = $_
  [pscustomobject]@{ error = [ordered]@{ type = $e.Exception.GetType().FullName; message = $e.Exception.Message; hresult = $e.Exception.HResult; fqid = $e.FullyQualifiedErrorId; category = [string]$e.CategoryInfo.Category } } | ConvertTo-Json -Compress -Depth 3
  exit 1
}
