$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
  $n = 'a''b; Remove-VM -Name * -Force #$env:X `" $(whoami) [x]*? ‘‘’’ ’’; exit 0 '''
  $p = 'T:\VM''s $(Remove-Item C:\ -Recurse)\My "VMs" & ^%PATH%\$x`\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx'
  $v = @(Get-VM | Where-Object { $_.Name -eq $n })
  if ($v.Count -gt 1) { throw ('[hvro:ambiguous_name] ' + $v.Count + ' virtual machines are named "' + $n + '"') }
  $res = 'already'
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
} catch {
  $e = $_
  [pscustomobject]@{ error = [ordered]@{ type = $e.Exception.GetType().FullName; message = $e.Exception.Message; hresult = $e.Exception.HResult; fqid = $e.FullyQualifiedErrorId; category = [string]$e.CategoryInfo.Category } } | ConvertTo-Json -Compress -Depth 3
  exit 1
}
