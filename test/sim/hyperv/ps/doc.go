// Package ps interprets the subset of Windows PowerShell 5.1 that the
// Hyper-V emulator understands (grammar in ../POWERSHELL.md). It is strict:
// anything outside the subset is a ParserError or CommandNotFoundException
// with PowerShell's own message, never silently ignored. Output, error
// records and exit codes follow powershell.exe -EncodedCommand.
package ps
