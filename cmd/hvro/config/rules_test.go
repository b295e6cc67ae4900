package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hvro/hvro/replica"
)

// A rule case edits the example config and names every problem expected
// ("path: part of the message"); no want means the edit is valid. $DIR in
// an edit is the case's folder.
type ruleCase struct {
	name  string
	edits []edit
	setup func(t *testing.T, dir string)
	want  []string
}

var ruleCases = []ruleCase{
	{name: "example is valid"},

	// listen
	{name: "listen all interfaces", edits: []edit{{"listen", ":9090"}}},
	{name: "listen port 0 for tests", edits: []edit{{"listen", "127.0.0.1:0"}}},
	{name: "listen without port", edits: []edit{{"listen", "localhost"}}, want: []string{`listen: "localhost" is not host:port`}},
	{name: "listen named port", edits: []edit{{"listen", "localhost:http"}}, want: []string{`listen: port "http" is not a number`}},
	{name: "listen port too big", edits: []edit{{"listen", "localhost:70000"}}, want: []string{`listen: port "70000"`}},

	// tls
	{name: "tls both files", setup: tlsFiles, edits: []edit{{"tls", "{cert_file: tls/api.crt, key_file: tls/api.key}"}}},
	{name: "tls cert only", edits: []edit{{"tls", "{cert_file: x.crt}"}}, want: []string{"tls.key_file: required when tls.cert_file is set"}},
	{name: "tls key only", edits: []edit{{"tls", "{key_file: x.key}"}}, want: []string{"tls.cert_file: required when tls.key_file is set"}},
	{name: "tls files missing", edits: []edit{{"tls", "{cert_file: no.crt, key_file: no.key}"}},
		want: []string{`tls.cert_file: file "$DIR/no.crt" does not exist`, `tls.key_file: file "$DIR/no.key" does not exist`}},
	{name: "tls key readable by others", setup: func(t *testing.T, dir string) {
		tlsFiles(t, dir)
		chmod(t, filepath.Join(dir, "tls/api.key"), 0o644)
	}, edits: []edit{{"tls", "{cert_file: tls/api.crt, key_file: tls/api.key}"}},
		want: []string{"tls.key_file: mode 0644: must not be readable by group or others (chmod 600 $DIR/tls/api.key)"}},
	{name: "tls cert and key do not match", setup: func(t *testing.T, dir string) {
		tlsFiles(t, dir)
		selfSigned(t, filepath.Join(dir, "tls"), "other")
	}, edits: []edit{{"tls", "{cert_file: tls/api.crt, key_file: tls/other.key}"}},
		want: []string{"tls: cert_file and key_file do not form a key pair"}},

	// data_dir, logs
	{name: "data_dir empty", edits: []edit{{"data_dir", `""`}}, want: []string{"data_dir: required"}},
	{name: "data_dir exists", setup: func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, "data")) }},
	{name: "data_dir is a file", edits: []edit{{"data_dir", "hvro.yaml"}}, want: []string{`data_dir: "$DIR/hvro.yaml" is not a folder`}},
	{name: "log_level upper case", edits: []edit{{"log_level", "DEBUG"}}},
	{name: "log_level unknown", edits: []edit{{"log_level", "verbose"}}, want: []string{`log_level: "verbose" is not one of debug, info, warn, error`}},
	{name: "log_format text", edits: []edit{{"log_format", "text"}}},
	{name: "log_format unknown", edits: []edit{{"log_format", "xml"}}, want: []string{`log_format: "xml" is not one of json, text`}},

	// auth
	{name: "admin token missing", edits: []edit{{"auth.admin_token_file", del}}, want: []string{"auth.admin_token_file: required (or admin_token_env)"}},
	{name: "admin token from env", edits: []edit{{"auth.admin_token_file", del}, {"auth.admin_token_env", "HVRO_ADMIN_TOKEN"}}},
	{name: "admin token file and env", edits: []edit{{"auth.admin_token_env", "HVRO_ADMIN_TOKEN"}}, want: []string{"auth.admin_token_env: set admin_token_file or admin_token_env, not both"}},
	{name: "admin token env unset", edits: []edit{{"auth.admin_token_file", del}, {"auth.admin_token_env", "HVRO_NOPE"}}, want: []string{"auth.admin_token_env: environment variable HVRO_NOPE is not set"}},
	{name: "admin token env empty", edits: []edit{{"auth.admin_token_file", del}, {"auth.admin_token_env", "HVRO_EMPTY"}}, want: []string{"auth.admin_token_env: environment variable HVRO_EMPTY is empty"}},
	{name: "admin token env not a name", edits: []edit{{"auth.admin_token_file", del}, {"auth.admin_token_env", "'pa ss!word'"}}, want: []string{"auth.admin_token_env: not an environment variable name"}},
	{name: "admin token too short", edits: []edit{{"auth.admin_token_file", del}, {"auth.admin_token_env", "HVRO_SHORT"}}, want: []string{"auth.admin_token_env: the token has 5 characters; use at least 16"}},
	{name: "admin token file missing", edits: []edit{{"auth.admin_token_file", "secrets/nope.token"}}, want: []string{`auth.admin_token_file: file "$DIR/secrets/nope.token" does not exist`}},
	{name: "admin token file empty", setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "secrets/admin.token"), "\n", 0o600) },
		want: []string{`auth.admin_token_file: "$DIR/secrets/admin.token" is empty`}},
	{name: "admin token file two lines", setup: func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, "secrets/admin.token"), "0123456789abcdef0123\nmore\n", 0o600)
	}, want: []string{`auth.admin_token_file: "$DIR/secrets/admin.token" has more than one line`}},
	{name: "admin token file is a folder", setup: func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, "secrets/dir.token")) },
		edits: []edit{{"auth.admin_token_file", "secrets/dir.token"}}, want: []string{`auth.admin_token_file: "$DIR/secrets/dir.token" is not a regular file`}},
	{name: "metrics_public false", edits: []edit{{"auth.metrics_public", "false"}}},
	{name: "metrics_public yes", edits: []edit{{"auth.metrics_public", "yes"}}, want: []string{`auth.metrics_public: "yes" is not true or false`}},

	// winrm
	{name: "winrm username missing", edits: []edit{{"winrm.username", del}}, want: []string{"winrm.username: required"}},
	{name: "winrm password missing", edits: []edit{{"winrm.password_file", del}}, want: []string{"winrm.password_file: required (or password_env)"}},
	{name: "winrm password from env", edits: []edit{{"winrm.password_file", del}, {"winrm.password_env", "HVRO_WINRM_PASS"}}},
	{name: "winrm password short is fine", edits: []edit{{"winrm.password_file", del}, {"winrm.password_env", "HVRO_SHORT"}}},
	{name: "winrm auth ntlm any case", edits: []edit{{"winrm.auth", "NTLM"}}},
	{name: "winrm auth unknown", edits: []edit{{"winrm.auth", "digest"}}, want: []string{`winrm.auth: "digest" is not one of basic, ntlm`}},
	// The WinRM driver has no Kerberos transport: refused by name, with the way out.
	{name: "winrm kerberos refused", edits: []edit{{"winrm.auth", "kerberos"}},
		want: []string{`winrm.auth: "kerberos" is not supported: hvro does not use the WinRM library's Kerberos transport`}},
	{name: "winrm kerberos refused any case", edits: []edit{{"winrm.auth", "Kerberos"}}, want: []string{`winrm.auth: use "ntlm", or "basic" over https`}},
	{name: "winrm kerberos block is unknown", edits: []edit{{"winrm.kerberos", "{realm: CORP.EXAMPLE.COM}"}}, want: []string{`winrm.kerberos: unknown key "kerberos"`}},
	{name: "winrm timeout zero", edits: []edit{{"winrm.timeout", "0s"}}, want: []string{"winrm.timeout: 0s is out of range; use 1s to 10m"}},
	{name: "winrm timeout too long", edits: []edit{{"winrm.timeout", "11m"}}, want: []string{"winrm.timeout: 11m is out of range"}},
	{name: "winrm timeout 10m", edits: []edit{{"winrm.timeout", "10m"}}},
	{name: "winrm timeout without unit", edits: []edit{{"winrm.timeout", "60"}}, want: []string{`winrm.timeout: 60 has no unit; write a Go duration such as "60s"`}},
	{name: "winrm timeout quoted without unit", edits: []edit{{"winrm.timeout", `"60"`}}, want: []string{`winrm.timeout: "60" is not a Go duration`}},
	{name: "winrm timeout in days", edits: []edit{{"winrm.timeout", "1d"}}, want: []string{`winrm.timeout: "1d" is not a Go duration`}},
	// The driver's bounds on the shell idle timeout it asks hosts for.
	{name: "shell idle timeout too short", edits: []edit{{"winrm.shell_idle_timeout", "1s"}}, want: []string{"winrm.shell_idle_timeout: 1s is out of range; use 2s to 2h"}},
	{name: "shell idle timeout too long", edits: []edit{{"winrm.shell_idle_timeout", "121m"}}, want: []string{"winrm.shell_idle_timeout: 121m is out of range; use 2s to 2h"}},
	{name: "shell idle timeout 2h", edits: []edit{{"winrm.shell_idle_timeout", "2h"}}},
	{name: "shell idle timeout 2s", edits: []edit{{"winrm.shell_idle_timeout", "2s"}}},
	// The driver's cap (replica.MaxShells, Windows' shells per user) is the config's.
	{name: "winrm max_concurrent 0", edits: []edit{{"winrm.max_concurrent_per_host", "0"}}, want: []string{fmt.Sprintf("winrm.max_concurrent_per_host: 0 is out of range; use 1 to %d", replica.MaxShells)}},
	{name: "winrm max_concurrent above the shells", edits: []edit{{"winrm.max_concurrent_per_host", strconv.Itoa(replica.MaxShells + 1)}},
		want: []string{fmt.Sprintf("winrm.max_concurrent_per_host: %d is out of range", replica.MaxShells+1)}},
	{name: "winrm max_concurrent at the shells", edits: []edit{{"winrm.max_concurrent_per_host", strconv.Itoa(replica.MaxShells)}}},
	{name: "winrm https needs https URLs", edits: []edit{{"winrm.https", "true"}}, want: []string{
		`clusters[0].servers.node1.winrm: "http://node1.corp.example:5985/wsman" is http but winrm.https is true`,
		`clusters[0].servers.node2.winrm: "http://node2.corp.example:5985/wsman" is http`,
		`clusters[1].servers.node3.winrm: "http://node3.corp.example:5985/wsman" is http`,
		`clusters[1].servers.node4.winrm: "http://node4.corp.example:5985/wsman" is http`,
	}},
	{name: "winrm https URLs", edits: []edit{{"winrm.https", "true"},
		{"clusters[0].servers", `{node1: {winrm: "https://node1:5986/wsman"}, node2: {winrm: "https://node2/wsman"}}`},
		{"clusters[1].servers", `{node3: {winrm: "https://node3:5986/wsman"}}`}}},
	// servers' replica_name
	{name: "replica_name", edits: []edit{{"clusters[0].servers.node1", `{winrm: "http://node1-mgmt.corp.example:5985/wsman", replica_name: NODE1.corp.example}`}}},
	{name: "replica_name short", edits: []edit{{"clusters[0].servers.node1", `{winrm: "http://10.0.0.1:5985/wsman", replica_name: hv-node1}`}}},
	{name: "replica_name is an IP address", edits: []edit{{"clusters[0].servers.node1", `{winrm: "http://node1:5985/wsman", replica_name: 10.0.0.1}`}},
		want: []string{`clusters[0].servers.node1.replica_name: "10.0.0.1" is an IP address: Hyper-V Replica needs a host name`}},
	{name: "replica_name not a host name", edits: []edit{{"clusters[0].servers.node1", `{winrm: "http://node1:5985/wsman", replica_name: "node 1"}`}},
		want: []string{`clusters[0].servers.node1.replica_name: "node 1" is not a host name`}},
	{name: "replica_name names another server", edits: []edit{{"clusters[1].servers.node3", `{winrm: "http://node3.corp.example:5985/wsman", replica_name: node1.corp.example}`}},
		want: []string{`clusters[1].servers.node3.replica_name: "node1.corp.example" already names server node1`}},
	{name: "replica_name is another server's FQDN, that server reached by IP", edits: []edit{
		{"clusters[0].servers.node1", `{winrm: "http://10.0.0.1:5985/wsman"}`},
		{"clusters[1].servers.node3", `{winrm: "http://10.0.0.3:5985/wsman", replica_name: node1.corp.example}`}},
		want: []string{`clusters[1].servers.node3.replica_name: "node1.corp.example" already names server node1`}},
	{name: "replica_name twice", edits: []edit{
		{"clusters[0].servers.node2", `{winrm: "http://node2.corp.example:5985/wsman", replica_name: hv.corp.example}`},
		{"clusters[1].servers.node3", `{winrm: "http://node3.corp.example:5985/wsman", replica_name: HV.corp.example}`}},
		want: []string{`clusters[1].servers.node3.replica_name: "HV.corp.example" already names server node2`}},
	{name: "winrm ca_file", setup: tlsFiles, edits: []edit{{"winrm.ca_file", "tls/api.crt"}}},
	{name: "winrm ca_file not PEM", edits: []edit{{"winrm.ca_file", "hvro.yaml"}}, want: []string{`winrm.ca_file: "$DIR/hvro.yaml" holds no PEM certificate`}},
	{name: "winrm ca_file and insecure", edits: []edit{{"winrm.ca_file", "x.pem"}, {"winrm.insecure_skip_verify", "true"}},
		want: []string{"winrm.insecure_skip_verify: set ca_file or insecure_skip_verify, not both"}},

	// clusters
	{name: "no clusters", edits: []edit{{"clusters", del}, {"pairs", "[]"}}, want: []string{"clusters: required"}},
	{name: "cluster name missing", edits: []edit{{"clusters[1].name", del}}, want: []string{
		"clusters[1].name: required", `pairs[0].replica.cluster: "cluster2" is not in clusters`}},
	{name: "cluster name twice", edits: []edit{{"clusters[1].name", "cluster1"}}, want: []string{
		`clusters[1].name: "cluster1" is also the name of clusters[0]`,
		`pairs[0].replica.cluster: "cluster2" is not in clusters`}},
	{name: "cluster name not label-safe", edits: []edit{{"clusters[0].name", `"cluster 1"`}, {"pairs[0].primary.cluster", `"cluster 1"`}},
		want: []string{`clusters[0].name: "cluster 1": use 1 to 63 of A-Z a-z 0-9 _ . -`}},
	{name: "api endpoints empty", edits: []edit{{"clusters[0].api.endpoints", "[]"}}, want: []string{"clusters[0].api.endpoints: required"}},
	{name: "api endpoint not http", edits: []edit{{"clusters[0].api.endpoints", `["htp://x:29009"]`}}, want: []string{`clusters[0].api.endpoints[0]: "htp://x:29009" is not an http(s) URL`}},
	{name: "api endpoint https", edits: []edit{{"clusters[0].api.endpoints", `["https://192.0.2.10:29009/api/v1/"]`}}},
	{name: "api endpoint credentials", edits: []edit{{"clusters[0].api.endpoints", `["http://root:PW-in-url@192.0.2.10:29009"]`}},
		want: []string{`clusters[0].api.endpoints[0]: the URL for host "192.0.2.10:29009" holds credentials`}},
	{name: "api endpoint without port", edits: []edit{{"clusters[0].api.endpoints", `["http://192.0.2.10"]`}}, want: []string{`clusters[0].api.endpoints[0]: "http://192.0.2.10" has no port`}},
	{name: "api endpoint with path", edits: []edit{{"clusters[0].api.endpoints", `["http://h:29009/api/v2"]`}}, want: []string{`clusters[0].api.endpoints[0]: "http://h:29009/api/v2": the path must be empty`}},
	{name: "api endpoint with query", edits: []edit{{"clusters[0].api.endpoints", `["http://h:29009?x=1"]`}}, want: []string{`clusters[0].api.endpoints[0]: "http://h:29009?x=1" must not have a query`}},
	{name: "api endpoint bad port", edits: []edit{{"clusters[0].api.endpoints", `["http://h:0"]`}}, want: []string{`clusters[0].api.endpoints[0]: "http://h:0": port "0" is not from 1 to 65535`}},
	{name: "api endpoint twice", edits: []edit{{"clusters[0].api.endpoints", `["http://h:29009", "http://H:29009/"]`}}, want: []string{`clusters[0].api.endpoints[1]: "http://H:29009/" repeats endpoints[0]`}},
	{name: "api endpoint not a URL", edits: []edit{{"clusters[0].api.endpoints", `["http://h:29009/%zz"]`}}, want: []string{`clusters[0].api.endpoints[0]: "http://h:29009/%zz" is not a valid URL`}},
	{name: "api username missing", edits: []edit{{"clusters[0].api.username", del}}, want: []string{"clusters[0].api.username: required"}},
	{name: "api password missing", edits: []edit{{"clusters[0].api.password_file", del}}, want: []string{"clusters[0].api.password_file: required (or password_env)"}},
	{name: "api password from env", edits: []edit{{"clusters[0].api.password_file", del}, {"clusters[0].api.password_env", "HVRO_WINRM_PASS"}}},
	{name: "api timeout zero", edits: []edit{{"clusters[0].api.timeout", "0s"}}, want: []string{"clusters[0].api.timeout: 0s is out of range"}},
	{name: "api retries 0", edits: []edit{{"clusters[0].api.retries", "0"}}},
	{name: "api retries 11", edits: []edit{{"clusters[0].api.retries", "11"}}, want: []string{"clusters[0].api.retries: 11 is out of range; use 0 to 10"}},
	{name: "api ca_file and insecure", edits: []edit{{"clusters[1].api.ca_file", "ca.pem"}, {"clusters[1].api.insecure_skip_verify", "true"}},
		want: []string{"clusters[1].api.insecure_skip_verify: set ca_file or insecure_skip_verify, not both"}},
	{name: "poll_interval 1s", edits: []edit{{"clusters[0].poll_interval", "1s"}}},
	{name: "poll_interval below 1s", edits: []edit{{"clusters[0].poll_interval", "500ms"}}, want: []string{"clusters[0].poll_interval: 500ms is out of range; use 1s to 1h"}},
	{name: "hook token missing", edits: []edit{{"clusters[1].hook_token_file", del}}, want: []string{"clusters[1].hook_token_file: required (or hook_token_env)"}},
	{name: "hook token from env", edits: []edit{{"clusters[1].hook_token_file", del}, {"clusters[1].hook_token_env", "HVRO_HOOK_SHARED"}}},
	{name: "hook token shared by clusters", edits: []edit{
		{"clusters[0].hook_token_file", del}, {"clusters[0].hook_token_env", "HVRO_HOOK_SHARED"},
		{"clusters[1].hook_token_file", del}, {"clusters[1].hook_token_env", "HVRO_HOOK_SHARED"}},
		want: []string{"clusters[1].hook_token_env: the same token as clusters[0]"}},
	{name: "hook token is the admin token", edits: []edit{{"clusters[1].hook_token_file", "secrets/admin.token"}},
		want: []string{"clusters[1].hook_token_file: the same token as auth.admin_token"}},
	{name: "servers empty", edits: []edit{{"clusters[1].servers", "{}"}}, want: []string{"clusters[1].servers: required"}},
	{name: "servers missing", edits: []edit{{"clusters[1].servers", del}}, want: []string{"clusters[1].servers: required"}},
	{name: "server winrm not http", edits: []edit{{"clusters[1].servers.node3.winrm", `"htp://x"`}},
		want: []string{`clusters[1].servers.node3.winrm: "htp://x" is not an http(s) URL`}},
	{name: "server winrm missing", edits: []edit{{"clusters[1].servers.node3", "{}"}}, want: []string{"clusters[1].servers.node3.winrm: required"}},
	{name: "server winrm path", edits: []edit{{"clusters[1].servers.node3.winrm", `"http://node3:5985/"`}}, want: []string{`clusters[1].servers.node3.winrm: "http://node3:5985/": the path must be /wsman`}},
	{name: "server winrm default port", edits: []edit{{"clusters[1].servers.node3.winrm", `"http://node3.corp.example/wsman"`}}},
	{name: "server winrm credentials", edits: []edit{{"clusters[1].servers.node3.winrm", `"http://admin:PW-in-url@node3:5985/wsman"`}},
		want: []string{`clusters[1].servers.node3.winrm: the URL for host "node3:5985" holds credentials`}},
	{name: "server name in two clusters", edits: []edit{{"clusters[1].servers.NODE1", `{winrm: "http://node7:5985/wsman"}`}},
		want: []string{`clusters[1].servers.NODE1: server "NODE1" is also a server of cluster "cluster1": each server is one Hyper-V host`}},
	{name: "server names differ only in case", edits: []edit{{"clusters[1].servers.NODE3", `{winrm: "http://node5:5985/wsman"}`}},
		want: []string{`clusters[1].servers.node3: "NODE3" and "node3" name the same server`}},
	{name: "server name not label-safe", edits: []edit{{"clusters[1].servers", `{"node 3": {winrm: "http://node3:5985/wsman"}}`}},
		want: []string{`clusters[1].servers["node 3"]: server name "node 3"`}},
	{name: "same host in two clusters", edits: []edit{{"clusters[1].servers.node3.winrm", `"http://NODE1.corp.example:5985/wsman"`}},
		want: []string{`clusters[1].servers.node3.winrm: "http://NODE1.corp.example:5985/wsman" is the same host as clusters[0].servers.node1.winrm`}},
	{name: "same host default port", edits: []edit{{"clusters[0].servers.node2.winrm", `"http://node1.corp.example/wsman"`}},
		want: []string{`clusters[0].servers.node2.winrm: "http://node1.corp.example/wsman" is the same host as clusters[0].servers.node1.winrm`}},

	// pairs
	{name: "no pairs", edits: []edit{{"pairs", "[]"}}},
	{name: "pair name missing", edits: []edit{{"pairs[0].name", del}}, want: []string{"pairs[0].name: required"}},
	{name: "pair name not label-safe", edits: []edit{{"pairs[0].name", `"vm 1"`}}, want: []string{`pairs[0].name: "vm 1": use 1 to 63`}},
	{name: "pair vm_name defaults to name", edits: []edit{{"pairs[0].vm_name", del}}},
	{name: "pair vm_name with space", edits: []edit{{"pairs[0].vm_name", `"web server 1"`}}},
	{name: "pair vm_name too long", edits: []edit{{"pairs[0].vm_name", strings.Repeat("v", 101)}}, want: []string{"pairs[0].vm_name: " + `"` + strings.Repeat("v", 80)}},
	{name: "pair name twice", edits: []edit{{"pairs", samePairTwice}}, want: []string{
		`pairs[1].name: "vm1" is also the name of pairs[0]`,
		`pairs[1].vm_name: VM "vm1" is also managed by pairs[0]`,
		`pairs[1].primary.vm_config_path: "T:\VMs\a.vmcx" is also pairs[0].primary.vm_config_path`,
		`pairs[1].replica.vm_config_path: "T:\VMs\b.vmcx" is also pairs[0].replica.vm_config_path`}},
	{name: "two pairs on one group", edits: []edit{{"pairs", twoPairsOneGroup}}},
	{name: "pair vm_name twice any case", edits: []edit{{"pairs", twoPairsOneGroup}, {"pairs[1].vm_name", "VM1"}}, want: []string{`pairs[1].vm_name: VM "VM1" is also managed by pairs[0]`}},
	{name: "pair cluster missing", edits: []edit{{"pairs[0].primary", `{group: g, vm_config_path: 'T:\x.vmcx'}`}}, want: []string{"pairs[0].primary.cluster: required"}},
	{name: "pair cluster unknown", edits: []edit{{"pairs[0].replica.cluster", "cluster3"}}, want: []string{`pairs[0].replica.cluster: "cluster3" is not in clusters`}},
	{name: "pair on one cluster", edits: []edit{{"pairs[0].replica.cluster", "cluster1"}}, want: []string{`pairs[0].replica.cluster: "cluster1" is also the primary cluster`}},
	{name: "pair group missing", edits: []edit{{"pairs[0].replica.group", `""`}}, want: []string{"pairs[0].replica.group: required"}},
	{name: "vm_config_path missing", edits: []edit{{"pairs[0].replica.vm_config_path", del}}, want: []string{"pairs[0].replica.vm_config_path: required"}},
	{name: "vm_config_path relative", edits: []edit{{"pairs[0].primary.vm_config_path", `'VMs\x.vmcx'`}}, want: []string{`pairs[0].primary.vm_config_path: "VMs\x.vmcx" is not an absolute Windows path`}},
	{name: "vm_config_path slashes", edits: []edit{{"pairs[0].primary.vm_config_path", `'T:/VMs/x.vmcx'`}}, want: []string{`pairs[0].primary.vm_config_path: "T:/VMs/x.vmcx": use backslashes`}},
	{name: "vm_config_path not vmcx", edits: []edit{{"pairs[0].primary.vm_config_path", `'T:\VMs\x.xml'`}}, want: []string{`pairs[0].primary.vm_config_path: "T:\VMs\x.xml" does not end in .vmcx`}},
	{name: "vm_config_path dot dot", edits: []edit{{"pairs[0].primary.vm_config_path", `'T:\VMs\..\x.vmcx'`}}, want: []string{`pairs[0].primary.vm_config_path: "T:\VMs\..\x.vmcx" holds a . or .. segment`}},
	{name: "vm_config_path bad character", edits: []edit{{"pairs[0].primary.vm_config_path", `'T:\VMs\x?.vmcx'`}}, want: []string{`pairs[0].primary.vm_config_path: "T:\VMs\x?.vmcx" holds a character Windows does not allow`}},
	{name: "vm_config_path UNC", edits: []edit{{"pairs[0].primary.vm_config_path", `'\\fs1\vms\vm1\x.VMCX'`}}},
	{name: "vm_config_path drive only", edits: []edit{{"pairs[0].primary.vm_config_path", `'T:x.vmcx'`}}, want: []string{`pairs[0].primary.vm_config_path: "T:x.vmcx" is not an absolute Windows path`}},

	// replication
	{name: "port 443", edits: []edit{{"pairs[0].replication.port", "443"}}},
	{name: "port 0", edits: []edit{{"pairs[0].replication.port", "0"}}, want: []string{"pairs[0].replication.port: 0 is not a port from 1 to 65535"}},
	{name: "port 65536", edits: []edit{{"pairs[0].replication.port", "65536"}}, want: []string{"pairs[0].replication.port: 65536 is not a port"}},
	{name: "port quoted", edits: []edit{{"pairs[0].replication.port", `"80"`}}, want: []string{`pairs[0].replication.port: "80" is quoted; write the number without quotes`}},
	{name: "port not a number", edits: []edit{{"pairs[0].replication.port", `eighty`}}, want: []string{`pairs[0].replication.port: "eighty" is not a whole number`}},
	{name: "compression quoted", edits: []edit{{"pairs[0].replication.compression", `"false"`}}, want: []string{`pairs[0].replication.compression: "false" is quoted; write false without quotes`}},
	{name: "port huge", edits: []edit{{"pairs[0].replication.port", "99999999999999999999999"}}, want: []string{`pairs[0].replication.port: "99999999999999999999999" is not a whole number`}},
	{name: "authentication lower case", edits: []edit{{"pairs[0].replication.authentication", "kerberos"}}},
	{name: "authentication unknown", edits: []edit{{"pairs[0].replication.authentication", "NTLM"}}, want: []string{`pairs[0].replication.authentication: "NTLM" is not one of Kerberos, Certificate`}},
	{name: "certificate with thumbprint", edits: []edit{{"pairs[0].replication.authentication", "Certificate"},
		{"pairs[0].replication.certificate_thumbprint", "\"\u200ea9 09 50 2d d8 2a e4 14 33 e6 f8 38 86 b0 0d 42 77 a3 2a 7b\""}}},
	{name: "certificate without thumbprint", edits: []edit{{"pairs[0].replication.authentication", "Certificate"}}, want: []string{"pairs[0].replication.certificate_thumbprint: required with authentication: Certificate"}},
	{name: "certificate thumbprint short", edits: []edit{{"pairs[0].replication.authentication", "Certificate"}, {"pairs[0].replication.certificate_thumbprint", "abc"}},
		want: []string{`pairs[0].replication.certificate_thumbprint: "ABC" is not 40 hex digits`}},
	{name: "kerberos with thumbprint", edits: []edit{{"pairs[0].replication.certificate_thumbprint", strings.Repeat("a", 40)}},
		want: []string{"pairs[0].replication.certificate_thumbprint: set, but authentication is Kerberos"}},
	{name: "frequency 30s", edits: []edit{{"pairs[0].replication.frequency", "30s"}}},
	{name: "frequency 15m", edits: []edit{{"pairs[0].replication.frequency", "15m"}}},
	{name: "frequency 60s", edits: []edit{{"pairs[0].replication.frequency", "60s"}}, want: []string{"pairs[0].replication.frequency: 60s is not allowed; Hyper-V replicates every 30s, 300s or 900s"}},
	{name: "frequency without unit", edits: []edit{{"pairs[0].replication.frequency", "300"}}, want: []string{`pairs[0].replication.frequency: 300 has no unit; write a Go duration such as "300s"`}},
	{name: "compression false", edits: []edit{{"pairs[0].replication.compression", "false"}}},
	{name: "initial network", edits: []edit{{"pairs[0].replication.initial", "network"}}},
	{name: "initial unknown", edits: []edit{{"pairs[0].replication.initial", "copy"}}, want: []string{`pairs[0].replication.initial: "copy" is not one of use_existing, network`}},

	// hvro's knobs
	{name: "resync_interval 0", edits: []edit{{"resync_interval", "0s"}}, want: []string{"resync_interval: 0s is out of range; use 1s to 24h"}},
	{name: "workers 0", edits: []edit{{"workers", "0"}}, want: []string{"workers: 0 is out of range; use 1 to 256"}},
	{name: "shutdown_timeout negative", edits: []edit{{"shutdown_timeout", "-1s"}}, want: []string{"shutdown_timeout: -1s is out of range"}},
	{name: "hooks.max_wait 0", edits: []edit{{"hooks.max_wait", "0s"}}},
	{name: "hooks.max_wait 2h", edits: []edit{{"hooks.max_wait", "2h"}}, want: []string{"hooks.max_wait: 2h is out of range"}},
	{name: "hooks.max_wait 30m", edits: []edit{{"hooks.max_wait", "30m"}}},
	{name: "hooks.max_wait 31m", edits: []edit{{"hooks.max_wait", "31m"}}, want: []string{"hooks.max_wait: 31m is out of range; use 0 (answer at once) up to 30m"}},
	{name: "retry max_attempts 0", edits: []edit{{"retry.max_attempts", "0"}}, want: []string{"retry.max_attempts: 0 is out of range; use 1 to 100"}},
	{name: "retry backoff inverted", edits: []edit{{"retry.initial_backoff", "10s"}, {"retry.max_backoff", "5s"}}, want: []string{"retry.max_backoff: 5s is below retry.initial_backoff (10s)"}},

	// decoding
	{name: "unknown key", edits: []edit{{"listn", "x"}}, want: []string{`listn: unknown key "listn"; did you mean "listen"?`}},
	{name: "unknown key far from any", edits: []edit{{"winrm.colour", "blue"}}, want: []string{`winrm.colour: unknown key "colour"; known keys: auth, ca_file`}},
	{name: "unknown nested key", edits: []edit{{"clusters[1].api.endpoint", "[]"}}, want: []string{`clusters[1].api.endpoint: unknown key "endpoint"; did you mean "endpoints"?`}},
	{name: "inline secret", edits: []edit{{"winrm.password", "hunter2"}}, want: []string{`winrm.password: unknown key "password": secrets are never inline; use password_file or password_env`}},
	{name: "list where a mapping belongs", edits: []edit{{"winrm", "[a, b]"}}, want: []string{"winrm: expected a mapping (key: value), got a list"}},
	{name: "scalar where a list belongs", edits: []edit{{"clusters", "cluster1"}, {"pairs", "[]"}}, want: []string{`clusters: expected a list, got "cluster1"`}},
	{name: "mapping where a string belongs", edits: []edit{{"winrm.username", "{a: b}"}}, want: []string{"winrm.username: expected a string, got a mapping (key: value)"}},
	{name: "null keeps the default", edits: []edit{{"winrm.timeout", "null"}}},
}

const samePairTwice = `
- {name: vm1, primary: {cluster: cluster1, group: g1, vm_config_path: 'T:\VMs\a.vmcx'}, replica: {cluster: cluster2, group: g2, vm_config_path: 'T:\VMs\b.vmcx'}}
- {name: vm1, primary: {cluster: cluster1, group: g1, vm_config_path: 'T:\VMs\a.vmcx'}, replica: {cluster: cluster2, group: g2, vm_config_path: 'T:\VMs\b.vmcx'}}
`

const twoPairsOneGroup = `
- {name: vm1, primary: {cluster: cluster1, group: g1, vm_config_path: 'T:\VMs\a.vmcx'}, replica: {cluster: cluster2, group: g2, vm_config_path: 'T:\VMs\a.vmcx'}}
- {name: vm2, primary: {cluster: cluster1, group: g1, vm_config_path: 'T:\VMs\b.vmcx'}, replica: {cluster: cluster2, group: g2, vm_config_path: 'T:\VMs\b.vmcx'}}
`

func tlsFiles(t *testing.T, dir string) {
	t.Helper()
	selfSigned(t, filepath.Join(dir, "tls"), "api")
}

func chmod(t *testing.T, name string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, name string) {
	t.Helper()
	if err := os.MkdirAll(name, 0o700); err != nil {
		t.Fatal(err)
	}
}

func TestRules(t *testing.T) {
	base := exampleYAML(t)
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := exampleDir(t)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			edits := make([]edit, len(tc.edits))
			for i, e := range tc.edits {
				edits[i] = edit{e.path, strings.ReplaceAll(e.value, "$DIR", dir)}
			}
			data := mutate(t, base, edits...)
			c, err := Parse(data, dir, WithEnv(fakeEnv))
			if err != nil {
				assertNoSecret(t, "the error", err.Error())
			}
			ps := problemsOf(t, err)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want no problem, got:\n%v\nconfig:\n%s", err, data)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("Validate after Parse: %v", err)
				}
				return
			}
			if c != nil {
				t.Errorf("Parse returned a Config with its problems")
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "$DIR", dir)
				path, msg, _ := strings.Cut(w, ": ")
				found := false
				for _, p := range ps {
					if p.Path == path && strings.Contains(p.Msg, msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("want problem %s: ...%s...; got:\n%v", path, msg, err)
				}
			}
			if len(ps) != len(tc.want) {
				t.Errorf("want %d problems, got %d:\n%v", len(tc.want), len(ps), err)
			}
			for _, p := range ps {
				if p.Line == 0 && p.Path != "clusters" {
					t.Errorf("problem without a line: %v", p)
				}
			}
		})
	}
}
