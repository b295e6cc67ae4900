#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
Installs or upgrades hvro as a Windows service on a management VM.

.DESCRIPTION
Copies hvro.exe to -InstallDir, creates -DataRoot (configuration, secrets,
store, logs) owned by Administrators and open to SYSTEM, Administrators and
the service's account only, optionally copies a configuration into it,
checks it with "hvro check-config", registers the service with "hvro service
install" and makes it run as -ServiceAccount: by default the virtual service
account NT SERVICE\<Name>, which may read the configuration and secrets and
write the store and logs, and nothing else on the machine. Run again with a
newer hvro.exe to upgrade: the service is stopped, the binary replaced and
the service started again; its registration and the data stay.

.EXAMPLE
.\install.ps1 -Binary .\hvro.exe -Config .\hvro.yaml

.EXAMPLE
.\install.ps1 -Binary \\share\hvro\1.2.0\hvro.exe     # upgrade

.EXAMPLE
.\install.ps1 -Binary .\hvro.exe -ServiceAccount LocalSystem   # the old, all-powerful account
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
    [switch] $NoStart,
    # Virtual: the virtual service account NT SERVICE\<Name> (no password,
    # no rights beyond those this script grants). LocalSystem: full control
    # of the machine; only if something outside hvro needs it.
    [ValidateSet('Virtual', 'LocalSystem')]
    [string] $ServiceAccount = 'Virtual'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# Well-known SIDs, so that the script works on any display language.
$SystemSid = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-18')
$AdminsSid = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-32-544')

function Assert-NotLink {
    # A junction or symbolic link would make the ACL changes below land
    # wherever it points; hvro's folders never hold one.
    param([Parameter(Mandatory = $true)] [System.IO.FileSystemInfo] $Item)
    if ($Item.Attributes -band [System.IO.FileAttributes]::ReparsePoint) {
        throw "$($Item.FullName) is a junction or symbolic link; remove it (hvro's folders must not hold one) and run again"
    }
}

function Set-Inherited {
    # Owner Administrators, explicit rules dropped, inheritance on: the
    # item gets exactly the rules of the folder it is in. For files and
    # folders that were there before this script (anyone may create a
    # folder in ProgramData, and its creator owns it).
    param([Parameter(Mandatory = $true)] [System.IO.FileSystemInfo] $Item)
    Assert-NotLink -Item $Item
    $acl = Get-Acl -LiteralPath $Item.FullName
    $acl.SetOwner($AdminsSid)
    foreach ($rule in @($acl.GetAccessRules($true, $false, [System.Security.Principal.SecurityIdentifier]))) {
        [void] $acl.RemoveAccessRuleSpecific($rule)
    }
    $acl.SetAccessRuleProtection($false, $false)
    Set-Acl -LiteralPath $Item.FullName -AclObject $acl
}

function Set-InheritedTree {
    # Set-Inherited on everything below Path, one level at a time, never
    # entering a junction or symbolic link (icacls /reset /T follows them).
    param([Parameter(Mandatory = $true)] [string] $Path)
    foreach ($child in @(Get-ChildItem -LiteralPath $Path -Force)) {
        Set-Inherited -Item $child
        if ($child.PSIsContainer) {
            Set-InheritedTree -Path $child.FullName
        }
    }
}

function Set-PrivateAcl {
    # Owner Administrators, and only SYSTEM and Administrators, nothing
    # inherited from ProgramData (where Users may create folders and read):
    # the folder holds the secrets and the store. The rules are set on the
    # folder itself and inherited by what is in it.
    param([Parameter(Mandatory = $true)] [string] $Path)
    Assert-NotLink -Item (Get-Item -LiteralPath $Path -Force)
    $acl = New-Object System.Security.AccessControl.DirectorySecurity
    $acl.SetOwner($AdminsSid)
    $acl.SetAccessRuleProtection($true, $false)
    foreach ($sid in @($SystemSid, $AdminsSid)) {
        $rule = New-Object System.Security.AccessControl.FileSystemAccessRule(
            $sid, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')
        $acl.AddAccessRule($rule)
    }
    Set-Acl -LiteralPath $Path -AclObject $acl
    Set-InheritedTree -Path $Path
}

function Grant-Account {
    # Adds an inheritable allow rule for the service's account to a folder.
    param(
        [Parameter(Mandatory = $true)] [string] $Path,
        [Parameter(Mandatory = $true)] [System.Security.Principal.SecurityIdentifier] $Sid,
        [Parameter(Mandatory = $true)] [string] $Rights
    )
    $acl = Get-Acl -LiteralPath $Path
    $rule = New-Object System.Security.AccessControl.FileSystemAccessRule(
        $Sid, $Rights, 'ContainerInherit,ObjectInherit', 'None', 'Allow')
    $acl.AddAccessRule($rule)
    Set-Acl -LiteralPath $Path -AclObject $acl
}

$source = (Resolve-Path -LiteralPath $Binary).Path
$exe = Join-Path $InstallDir 'hvro.exe'
$configPath = Join-Path $DataRoot 'hvro.yaml'

# 0. A running service is stopped first (it drains) and restarted at the
#    end: the permissions below change under it.
$service = Get-Service -Name $Name -ErrorAction SilentlyContinue
$wasRunning = $false
if ($null -ne $service -and $service.Status -ne 'Stopped') {
    $wasRunning = $true
    Write-Host "stopping service $Name (running steps finish first)..."
    Stop-Service -Name $Name
    (Get-Service -Name $Name).WaitForStatus('Stopped', [TimeSpan]::FromMinutes(10))
}

# 1. Folders and their permissions.
$dataDir = Join-Path $DataRoot 'data'
$logDir = Join-Path $DataRoot 'logs'
foreach ($dir in @($InstallDir, $DataRoot, (Join-Path $DataRoot 'secrets'), $dataDir, $logDir)) {
    if (-not (Test-Path -LiteralPath $dir)) {
        New-Item -ItemType Directory -Path $dir | Out-Null
    }
}
Set-PrivateAcl -Path $DataRoot
Write-Host "data folder $DataRoot`: owned by Administrators, SYSTEM and Administrators only"

# 2. The binary.
Copy-Item -LiteralPath $source -Destination $exe -Force
Write-Host "installed $exe"
& $exe version

# 3. The configuration.
if ($Config -ne '') {
    if ((Test-Path -LiteralPath $configPath) -and -not $Force) {
        Write-Warning "$configPath exists; keeping it (use -Force to replace it with $Config)"
    } else {
        Copy-Item -LiteralPath $Config -Destination $configPath -Force
        Set-Inherited -Item (Get-Item -LiteralPath $configPath -Force)
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

# 5b. The account it runs as. A virtual account exists once its service
#     does; it gets read access to the configuration and secrets and write
#     access to the store and the logs (a data_dir outside $DataRoot needs
#     the same grant by hand). An upgrade keeps the account the service
#     already runs as unless -ServiceAccount says otherwise: a LocalSystem
#     install whose files sit outside $DataRoot would stop working.
$account = $null
if ($null -ne $service -and -not $PSBoundParameters.ContainsKey('ServiceAccount')) {
    $current = (Get-CimInstance Win32_Service -Filter "Name='$Name'").StartName
    Write-Host "service $Name keeps its account $current (pass -ServiceAccount to change it)"
} elseif ($ServiceAccount -eq 'LocalSystem') {
    $account = 'LocalSystem'
} else {
    $account = "NT SERVICE\$Name"
    $sid = (New-Object System.Security.Principal.NTAccount($account)).Translate([System.Security.Principal.SecurityIdentifier])
    Grant-Account -Path $DataRoot -Sid $sid -Rights 'ReadAndExecute'
    Grant-Account -Path $dataDir -Sid $sid -Rights 'Modify'
    Grant-Account -Path $logDir -Sid $sid -Rights 'Modify'
}
if ($null -ne $account) {
    & sc.exe config $Name obj= $account | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "sc.exe config $Name obj= $account failed with exit code $LASTEXITCODE" }
    Write-Host "service $Name runs as $account"
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
