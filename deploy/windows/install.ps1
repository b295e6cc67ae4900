#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
Installs or upgrades hvro as a Windows service on a management VM.

.DESCRIPTION
Copies hvro.exe to -InstallDir, creates -DataRoot (configuration, secrets,
store, logs) readable by SYSTEM and Administrators only, optionally copies a
configuration into it, checks it with "hvro check-config" and registers the
service with "hvro service install". Run again with a newer hvro.exe to
upgrade: the service is stopped, the binary replaced and the service started
again; its registration and the data stay.

.EXAMPLE
.\install.ps1 -Binary .\hvro.exe -Config .\hvro.yaml

.EXAMPLE
.\install.ps1 -Binary \\share\hvro\1.2.0\hvro.exe     # upgrade
#>
[CmdletBinding()]
param(
    # The hvro.exe to install.
    [Parameter(Mandatory = $true)]
    [string] $Binary,
    # A hvro.yaml to copy to <DataRoot>\hvro.yaml; an existing one is kept unless -Force.
    [string] $Config = '',
    [string] $InstallDir = (Join-Path $env:ProgramFiles 'hvro'),
    [string] $DataRoot = (Join-Path $env:ProgramData 'hvro'),
    [string] $Name = 'hvro',
    # Overwrite an existing <DataRoot>\hvro.yaml with -Config.
    [switch] $Force,
    # Register the service but do not start it.
    [switch] $NoStart
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# Well-known SIDs, so that the script works on any display language.
$SystemSid = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-18')
$AdminsSid = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-32-544')

function Set-PrivateAcl {
    # Only SYSTEM and Administrators, nothing inherited from ProgramData
    # (where Users may read): the folder holds the secrets and the store.
    param([Parameter(Mandatory = $true)] [string] $Path)
    $acl = New-Object System.Security.AccessControl.DirectorySecurity
    $acl.SetAccessRuleProtection($true, $false)
    foreach ($sid in @($SystemSid, $AdminsSid)) {
        $rule = New-Object System.Security.AccessControl.FileSystemAccessRule(
            $sid, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')
        $acl.AddAccessRule($rule)
    }
    Set-Acl -LiteralPath $Path -AclObject $acl
    # Files that were there before get the folder's rules too.
    Get-ChildItem -LiteralPath $Path -Recurse -Force | ForEach-Object {
        & icacls.exe $_.FullName /reset /Q | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "icacls /reset $($_.FullName) failed with exit code $LASTEXITCODE" }
    }
}

$source = (Resolve-Path -LiteralPath $Binary).Path
$exe = Join-Path $InstallDir 'hvro.exe'
$configPath = Join-Path $DataRoot 'hvro.yaml'

# 1. Folders and their permissions.
foreach ($dir in @($InstallDir, $DataRoot, (Join-Path $DataRoot 'secrets'), (Join-Path $DataRoot 'logs'))) {
    if (-not (Test-Path -LiteralPath $dir)) {
        New-Item -ItemType Directory -Path $dir | Out-Null
    }
}
Set-PrivateAcl -Path $DataRoot
Write-Host "data folder $DataRoot`: SYSTEM and Administrators only"

# 2. The binary; a running service is stopped first (it drains) and
#    restarted at the end.
$service = Get-Service -Name $Name -ErrorAction SilentlyContinue
$wasRunning = $false
if ($null -ne $service -and $service.Status -ne 'Stopped') {
    $wasRunning = $true
    Write-Host "stopping service $Name (running steps finish first)..."
    Stop-Service -Name $Name
    (Get-Service -Name $Name).WaitForStatus('Stopped', [TimeSpan]::FromMinutes(10))
}
Copy-Item -LiteralPath $source -Destination $exe -Force
Write-Host "installed $exe"
& $exe version

# 3. The configuration.
if ($Config -ne '') {
    if ((Test-Path -LiteralPath $configPath) -and -not $Force) {
        Write-Warning "$configPath exists; keeping it (use -Force to replace it with $Config)"
    } else {
        Copy-Item -LiteralPath $Config -Destination $configPath -Force
        & icacls.exe $configPath /reset /Q | Out-Null
        Write-Host "copied $Config to $configPath"
    }
}
if (-not (Test-Path -LiteralPath $configPath)) {
    Write-Warning "no $configPath yet: copy deploy\examples\hvro.yaml there, adapt it, and put the secret files it names into $DataRoot\secrets"
}

# 4. Check it; the service does not start with an invalid configuration.
$valid = $false
if (Test-Path -LiteralPath $configPath) {
    & $exe check-config --config $configPath
    $valid = ($LASTEXITCODE -eq 0)
}

# 5. Register the service (once).
if ($null -eq $service) {
    & $exe service install --config $configPath --name $Name
    if ($LASTEXITCODE -ne 0) { throw "hvro service install failed with exit code $LASTEXITCODE" }
}

# 6. Start it.
if ($NoStart) {
    Write-Host "service $Name registered; start it with: Start-Service $Name"
} elseif (-not $valid) {
    Write-Warning "not starting $Name until 'hvro check-config --config $configPath' passes; then: Start-Service $Name"
} elseif ($null -eq $service -or $wasRunning) {
    Start-Service -Name $Name
    Write-Host "service $Name started; log: $DataRoot\logs\hvro.log"
} else {
    Write-Host "service $Name was stopped before the upgrade and stays stopped; start it with: Start-Service $Name"
}
