// Package wsman is the WS-Management (WinRM) server of the Hyper-V host
// emulator: one listener per emulated host speaking the Windows Remote Shell
// protocol (Create, Command, Send, Receive, Signal, Delete) over HTTP or
// HTTPS with Basic authentication, plus the cmd.exe and powershell.exe
// command-line layers a real host applies before a PowerShell script runs.
//
// The one thing to know: it is strict on purpose. Every request a real
// Windows host would refuse is refused here with the fault Windows sends
// (codes, texts and sources in PROTOCOL.md), and a command line is handled as
// cmd.exe and powershell.exe would handle it, so a client that works against
// this server has been checked against Windows' rules, not against a fake
// that accepts anything. It imports nothing from hvro.
package wsman
