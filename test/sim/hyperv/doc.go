// Package hyperv emulates Hyper-V hosts as real WS-Management servers that
// interpret a documented PowerShell subset against a Hyper-V Replica state
// model. It refuses what real hosts refuse. It imports nothing from hvro.
package hyperv
