$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
  $n = 'vm1'
  $v = @(Get-VM | Where-Object { $_.Name -eq $n })
  if ($v.Count -gt 1) { throw ('[hvro:ambiguous_name] ' + $v.Count + ' virtual machines are named "' + $n + '"') }
  if ($v.Count -eq 0) { throw ('[hvro:vm_not_found] no virtual machine is named "' + $n + '"') }
  $v = $v[0]
  $m = [string]$v.ReplicationMode
  $s = [string]$v.ReplicationState
  $res = 'done'
  if (@('Off', 'Saved', 'OffCritical', 'SavedCritical') -contains [string]$v.State) { $res = 'already' } else { Stop-VM -VM $v }
  [ordered]@{ result = $res } | ConvertTo-Json -Compress
} catch {
  $e = $_
  [pscustomobject]@{ error = [ordered]@{ type = $e.Exception.GetType().FullName; message = $e.Exception.Message; hresult = $e.Exception.HResult; fqid = $e.FullyQualifiedErrorId; category = [string]$e.CategoryInfo.Category } } | ConvertTo-Json -Compress -Depth 3
  exit 1
}
