@echo off
rem hvro: stop script of an EXPRESSCLUSTER X script resource. It tells hvro
rem that this server deactivates the group and exits with hvro hook's exit
rem code, so that ECX sees the truth:
rem   0  go on (hvro removed what had to leave this server, or it failed
rem      open because hvro is unreachable and --strict is not set)
rem   2  usage or configuration error (this file, hvro-hook.env.bat, the token)
rem   3  hvro unreachable and --strict
rem Settings: hvro-hook.env.bat next to this file (README.md). Keep this file
rem free of ( ) blocks: ERRORLEVEL inside a block is read before the block runs.
setlocal
if not defined CLP_SCRIPT_PATH set "CLP_SCRIPT_PATH=%~dp0"
cd /d "%CLP_SCRIPT_PATH%" || exit /b 2
if not exist "hvro-hook.env.bat" goto noenv
call "hvro-hook.env.bat"
if not defined HVRO_EXE set "HVRO_EXE=%ProgramFiles%\hvro\hvro.exe"
if not defined HVRO_WAIT set "HVRO_WAIT=5m"
if not defined HVRO_URL goto incomplete
if not defined HVRO_CLUSTER goto incomplete
if not defined HVRO_GROUP goto incomplete
if not defined HVRO_TOKEN_FILE goto incomplete
if not exist "%HVRO_EXE%" goto noexe
set "HVRO_CA_ARGS="
if defined HVRO_CA_FILE set HVRO_CA_ARGS=--ca-file "%HVRO_CA_FILE%"
"%HVRO_EXE%" hook --url "%HVRO_URL%" --cluster "%HVRO_CLUSTER%" --group "%HVRO_GROUP%" --phase stop --token-file "%HVRO_TOKEN_FILE%" --wait "%HVRO_WAIT%" %HVRO_CA_ARGS% %HVRO_EXTRA_ARGS%
exit /b %ERRORLEVEL%

:noenv
echo hvro hook: "%CD%\hvro-hook.env.bat" is missing; add it to this script resource (README.md)
exit /b 2

:incomplete
echo hvro hook: hvro-hook.env.bat must set HVRO_URL, HVRO_CLUSTER, HVRO_GROUP and HVRO_TOKEN_FILE
exit /b 2

:noexe
echo hvro hook: "%HVRO_EXE%" not found; install hvro.exe there or set HVRO_EXE in hvro-hook.env.bat
exit /b 2
