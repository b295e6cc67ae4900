$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
  $h = @(Get-VMHost)[0]
  [ordered]@{ computer = [string]$h.ComputerName; fqdn = [string]$h.FullyQualifiedDomainName } | ConvertTo-Json -Compress
} catch {
  $e = $_
  [pscustomobject]@{ error = [ordered]@{ type = $e.Exception.GetType().FullName; message = $e.Exception.Message; hresult = $e.Exception.HResult; fqid = $e.FullyQualifiedErrorId; category = [string]$e.CategoryInfo.Category } } | ConvertTo-Json -Compress -Depth 3
  exit 1
}
