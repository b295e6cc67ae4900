$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
  $n = 'vm1'
  $rh = 'node3'
  $port = 80
  $auth = 'Certificate'
  $tp = 'ABABABABABABABABABABABABABABABABABABABAB'
  $freq = 300
  $comp = $true
  $v = @(Get-VM | Where-Object { $_.Name -eq $n })
  if ($v.Count -gt 1) { throw ('[hvro:ambiguous_name] ' + $v.Count + ' virtual machines are named "' + $n + '"') }
  if ($v.Count -eq 0) { throw ('[hvro:vm_not_found] no virtual machine is named "' + $n + '"') }
  $v = $v[0]
  $m = [string]$v.ReplicationMode
  $s = [string]$v.ReplicationState
  $res = 'done'
  $cur = ''
  if ($m -eq 'Primary') { $cur = [string]@(Get-VMReplication -VM $v)[0].ReplicaServerName }
  if ($cur -and $cur.Split('.')[0] -eq $rh.Split('.')[0]) { $res = 'already' }
  elseif ($auth -eq 'Certificate') { Set-VMReplication -VM $v -Reverse -ReplicaServerName $rh -ReplicaServerPort $port -AuthenticationType $auth -CertificateThumbprint $tp -ReplicationFrequencySec $freq -CompressionEnabled $comp }
  else { Set-VMReplication -VM $v -Reverse -ReplicaServerName $rh -ReplicaServerPort $port -AuthenticationType $auth -ReplicationFrequencySec $freq -CompressionEnabled $comp }
  [ordered]@{ result = $res } | ConvertTo-Json -Compress
} catch {
  $e = $_
  [pscustomobject]@{ error = [ordered]@{ type = $e.Exception.GetType().FullName; message = $e.Exception.Message; hresult = $e.Exception.HResult; fqid = $e.FullyQualifiedErrorId; category = [string]$e.CategoryInfo.Category } } | ConvertTo-Json -Compress -Depth 3
  exit 1
}
