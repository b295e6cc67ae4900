// Package replica drives Hyper-V Replica on one host over WinRM: it emits
// short PowerShell scripts with every value quoted, and turns their JSON
// output into typed results and classified errors (transient or permanent).
package replica
