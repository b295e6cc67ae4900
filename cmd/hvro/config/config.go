package config

import (
	"time"

	"github.com/hvro/hvro/replica"
)

// Config is hvro.yaml. The yaml names are fixed by CONTRACTS.md section 1;
// fields past those are hvro's own knobs, each with a default.
type Config struct {
	Listen   string `yaml:"listen" json:"listen"`
	TLS      TLS    `yaml:"tls" json:"tls"`
	DataDir  string `yaml:"data_dir" json:"data_dir"` // Load makes it absolute
	LogLevel string `yaml:"log_level" json:"log_level"`
	// LogFormat is json (the default, for log shippers) or text.
	LogFormat string    `yaml:"log_format" json:"log_format"`
	Auth      Auth      `yaml:"auth" json:"auth"`
	WinRM     WinRM     `yaml:"winrm" json:"winrm"`
	Clusters  []Cluster `yaml:"clusters" json:"clusters"`
	Pairs     []Pair    `yaml:"pairs" json:"pairs"`

	// ResyncInterval is how often every pair is reconciled even when no
	// event arrived, so drift made by hand on a host gets repaired.
	ResyncInterval time.Duration `yaml:"resync_interval" json:"resync_interval"`
	// Workers bounds how many pairs are reconciled at the same time
	// (winrm.max_concurrent_per_host bounds each host on top).
	Workers int `yaml:"workers" json:"workers"`
	// ShutdownTimeout bounds the drain on SIGTERM: the running steps get
	// this long to finish and be journaled.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	Hooks           Hooks         `yaml:"hooks" json:"hooks"`
	Retry           Retry         `yaml:"retry" json:"retry"`

	// Warnings are what Load, Parse and Validate found unsafe but
	// allowed (cleartext credentials), in file order.
	Warnings []Warning `yaml:"-" json:"-"`

	// lines maps a field path ("clusters[0].api.timeout") to its line in
	// the file, so problems found after decoding can still point at it.
	lines map[string]int
}

// TLS is the HTTPS certificate of the API; both files or neither.
type TLS struct {
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
}

// Enabled reports whether the API serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Auth holds the admin bearer token of /v1 (hooks use their cluster's token).
type Auth struct {
	AdminTokenFile string `yaml:"admin_token_file" json:"admin_token_file"`
	AdminTokenEnv  string `yaml:"admin_token_env" json:"admin_token_env"`
	MetricsPublic  bool   `yaml:"metrics_public" json:"metrics_public"`

	AdminToken Secret `yaml:"-" json:"admin_token"`
}

// WinRM auth methods: what the WinRM driver (package replica) supports.
// "kerberos" is refused with the reason (see checker.winrm).
const (
	WinRMBasic = "basic"
	WinRMNTLM  = "ntlm"
)

// WinRM holds the settings shared by every Hyper-V host.
type WinRM struct {
	Username     string `yaml:"username" json:"username"`
	PasswordFile string `yaml:"password_file" json:"password_file"`
	PasswordEnv  string `yaml:"password_env" json:"password_env"`
	Auth         string `yaml:"auth" json:"auth"`
	// HTTPS requires every server URL to be https (a check, not a switch:
	// the scheme of each URL decides).
	HTTPS              bool `yaml:"https" json:"https"`
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
	// CAFile is a PEM bundle that verifies the hosts' certificates.
	CAFile               string        `yaml:"ca_file" json:"ca_file"`
	Timeout              time.Duration `yaml:"timeout" json:"timeout"`
	MaxConcurrentPerHost int           `yaml:"max_concurrent_per_host" json:"max_concurrent_per_host"`
	// ShellIdleTimeout is the idle timeout hvro asks each host for in every
	// WinRM shell: the host deletes a shell (and kills its command) that
	// gets no request for that long, which bounds a command orphaned by a
	// crash of hvro; a restart holds an interrupted pair as long.
	ShellIdleTimeout time.Duration `yaml:"shell_idle_timeout" json:"shell_idle_timeout"`

	Password Secret `yaml:"-" json:"password"`
}

// Cluster is one ECX cluster: its API, its hook token and its servers.
type Cluster struct {
	Name          string        `yaml:"name" json:"name"`
	API           API           `yaml:"api" json:"api"`
	PollInterval  time.Duration `yaml:"poll_interval" json:"poll_interval"`
	HookTokenFile string        `yaml:"hook_token_file" json:"hook_token_file"`
	HookTokenEnv  string        `yaml:"hook_token_env" json:"hook_token_env"`
	// Servers maps an ECX server name to its Hyper-V host. Names compare
	// case-insensitively.
	Servers map[string]Server `yaml:"servers" json:"servers"`

	HookToken Secret `yaml:"-" json:"hook_token"`
}

// API is how hvro reaches a cluster's ECX RESTful API.
type API struct {
	// Endpoints are base URLs (floating IP and/or nodes), tried in order.
	Endpoints          []string      `yaml:"endpoints" json:"endpoints"`
	Username           string        `yaml:"username" json:"username"`
	PasswordFile       string        `yaml:"password_file" json:"password_file"`
	PasswordEnv        string        `yaml:"password_env" json:"password_env"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
	CAFile             string        `yaml:"ca_file" json:"ca_file"`
	Timeout            time.Duration `yaml:"timeout" json:"timeout"`
	// Retries per endpoint after the first attempt, before the next
	// endpoint is tried; 0 means none (clusterapi.Config wants -1 for that).
	Retries int `yaml:"retries" json:"retries"`

	Password Secret `yaml:"-" json:"password"`
}

// Server is one Hyper-V host of a cluster.
type Server struct {
	// WinRM is the host's WS-Management URL, e.g. http://node1:5985/wsman.
	WinRM string `yaml:"winrm" json:"winrm"`
	// ReplicaName is the name Hyper-V Replica uses for this host: what
	// hvro gives Enable-VMReplication -ReplicaServerName when this host is
	// the replica. Empty: the WinRM URL's host name, or the server name
	// when the URL holds an IP address.
	ReplicaName string `yaml:"replica_name,omitempty" json:"replica_name,omitempty"`
}

// Replication authentication types (Enable-VMReplication -AuthenticationType).
const (
	AuthKerberos    = "Kerberos"
	AuthCertificate = "Certificate"
)

// Initial replication methods.
const (
	InitialUseExisting = "use_existing" // Start-VMInitialReplication -UseBackup
	InitialNetwork     = "network"
)

// Pair is one protected VM: its two sides and how it replicates.
//
// Several pairs may name the same group: a failover group can hold the
// disks of several VMs, and a hook for that group queues all of them.
type Pair struct {
	Name string `yaml:"name" json:"name"`
	// VMName is the VM's name in Hyper-V; empty means Name (Load fills it).
	VMName      string      `yaml:"vm_name" json:"vm_name"`
	Primary     Side        `yaml:"primary" json:"primary"`
	Replica     Side        `yaml:"replica" json:"replica"`
	Replication Replication `yaml:"replication" json:"replication"`
}

// Side is where one copy of a pair's VM lives. Primary is the role at first
// start only; afterwards the store knows which side is primary.
type Side struct {
	Cluster      string `yaml:"cluster" json:"cluster"`
	Group        string `yaml:"group" json:"group"`
	VMConfigPath string `yaml:"vm_config_path" json:"vm_config_path"`
}

// Replication is what Enable-VMReplication gets.
type Replication struct {
	Port                  int    `yaml:"port" json:"port"`
	Authentication        string `yaml:"authentication" json:"authentication"`
	CertificateThumbprint string `yaml:"certificate_thumbprint" json:"certificate_thumbprint"`
	// Frequency is 30s, 5m or 15m (-ReplicationFrequencySec 30, 300, 900).
	Frequency   time.Duration `yaml:"frequency" json:"frequency"`
	Compression bool          `yaml:"compression" json:"compression"`
	Initial     string        `yaml:"initial" json:"initial"`
}

// Hooks tunes POST /v1/hooks.
type Hooks struct {
	// MaxWait caps the ?wait= of a hook call; a longer wait is shortened.
	// Keep it below the ECX script timeout, or ECX fails the group.
	MaxWait time.Duration `yaml:"max_wait" json:"max_wait"`
}

// Retry is the backoff of a step that failed with a transient error (host
// unreachable, WinRM timeout) before the pair is parked as Degraded.
type Retry struct {
	MaxAttempts    int           `yaml:"max_attempts" json:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff" json:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff" json:"max_backoff"`
}

// Defaults is the configuration before the file is read: every default
// hvro applies, and no clusters or pairs (see DefaultCluster, DefaultPair).
func Defaults() *Config {
	return &Config{
		Listen:    "127.0.0.1:8080",
		DataDir:   "./data",
		LogLevel:  "info",
		LogFormat: "json",
		Auth:      Auth{MetricsPublic: true},
		WinRM: WinRM{
			Auth:                 WinRMBasic,
			Timeout:              60 * time.Second,
			MaxConcurrentPerHost: 4,
			ShellIdleTimeout:     replica.DefaultShellIdleTimeout,
		},
		ResyncInterval:  30 * time.Second,
		Workers:         8,
		ShutdownTimeout: 2 * time.Minute,
		Hooks:           Hooks{MaxWait: 10 * time.Minute},
		Retry: Retry{
			MaxAttempts:    5,
			InitialBackoff: time.Second,
			MaxBackoff:     time.Minute,
		},
	}
}

// DefaultCluster is what every entry of clusters starts from.
func DefaultCluster() Cluster {
	return Cluster{
		API:          API{Timeout: 5 * time.Second, Retries: 2},
		PollInterval: 5 * time.Second,
	}
}

// DefaultPair is what every entry of pairs starts from.
func DefaultPair() Pair {
	return Pair{Replication: Replication{
		Port:           80,
		Authentication: AuthKerberos,
		Frequency:      300 * time.Second,
		Compression:    true,
		Initial:        InitialUseExisting,
	}}
}
