package config

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hvro/hvro/replica"
)

// docs comments each key in PrintDefaults. Keys are generic paths: a list
// item is [], a map entry *. A test checks that every key has one.
var docs = map[string]string{
	"listen":                                     "HTTP API, hooks, /metrics (host:port; :8080 for every interface)",
	"tls":                                        "optional HTTPS; both files or neither",
	"tls.cert_file":                              "PEM certificate (chain)",
	"tls.key_file":                               "PEM private key, mode 0600",
	"data_dir":                                   "the store: <data_dir>/hvro.db; relative paths start at this file's folder",
	"log_level":                                  "debug | info | warn | error",
	"log_format":                                 "json | text",
	"auth":                                       "",
	"auth.admin_token_file":                      "required (or admin_token_env): bearer token for /v1 except hooks; mode 0600, 16+ characters",
	"auth.admin_token_env":                       "name of a variable holding the admin token, instead of the file",
	"auth.metrics_public":                        "serve /metrics without a token",
	"winrm":                                      "defaults for every Hyper-V host",
	"winrm.username":                             `required, e.g. CORP\svc-hvro`,
	"winrm.password_file":                        "required (or password_env); mode 0600",
	"winrm.password_env":                         "name of a variable holding the password, instead of the file",
	"winrm.auth":                                 "basic | ntlm (kerberos is not supported)",
	"winrm.https":                                "true: every server URL must be https",
	"winrm.insecure_skip_verify":                 "accept any host certificate (https)",
	"winrm.ca_file":                              "PEM bundle that verifies the hosts' certificates (https)",
	"winrm.timeout":                              "per WinRM request; up to 10m",
	"winrm.max_concurrent_per_host":              "commands in flight per host, 1 to " + strconv.Itoa(replica.MaxShells) + " (Windows' shells per user)",
	"winrm.shell_idle_timeout":                   "hosts delete a WinRM shell (and kill its command) idle this long; bounds a command a crash of hvro left running, and how long a restart waits for it; 2s to 2h, at least 1m for Windows",
	"clusters":                                   "required: the ECX clusters (an entry's defaults are shown)",
	"clusters[].name":                            "required, unique; A-Z a-z 0-9 _ . - (a metric label)",
	"clusters[].api":                             "the ECX RESTful API",
	"clusters[].api.endpoints":                   `required: FIP and/or node URLs with port, tried in order, e.g. ["http://192.0.2.10:29009"]`,
	"clusters[].api.username":                    "required, e.g. Administrator",
	"clusters[].api.password_file":               "required (or password_env); mode 0600",
	"clusters[].api.password_env":                "name of a variable holding the password, instead of the file",
	"clusters[].api.insecure_skip_verify":        "accept any certificate (ECX often runs self-signed)",
	"clusters[].api.ca_file":                     "PEM bundle that verifies the API's certificate",
	"clusters[].api.timeout":                     "per HTTP attempt",
	"clusters[].api.retries":                     "retries per endpoint before the next one, 0 to 10",
	"clusters[].poll_interval":                   "how often the groups are read; 1s or more",
	"clusters[].hook_token_file":                 "required (or hook_token_env): this cluster's scripts send it; mode 0600, 16+ characters, unique",
	"clusters[].hook_token_env":                  "name of a variable holding the hook token, instead of the file",
	"clusters[].servers":                         "required: ECX server name -> Hyper-V host, e.g. node1: {winrm: \"http://node1.corp.example:5985/wsman\"}",
	"clusters[].servers.*.winrm":                 "the host's WS-Management URL, path /wsman",
	"clusters[].servers.*.replica_name":          "the name Hyper-V Replica uses for the host; empty: the winrm URL's host name (the server name for an IP URL)",
	"pairs":                                      "the protected VMs (an entry's defaults are shown); several pairs may share a group",
	"pairs[].name":                               "required, unique; A-Z a-z 0-9 _ . - (a metric label)",
	"pairs[].vm_name":                            "the VM's name in Hyper-V; empty: name",
	"pairs[].primary":                            "primary role at first start; afterwards the store knows",
	"pairs[].primary.cluster":                    "required: one of clusters",
	"pairs[].primary.group":                      "required: the ECX failover group holding the VM's disk",
	"pairs[].primary.vm_config_path":             `required: 'T:\VMs\Virtual Machines\<VM id>.vmcx'`,
	"pairs[].replica":                            "the other cluster",
	"pairs[].replica.cluster":                    "required: not the primary's cluster",
	"pairs[].replica.group":                      "required",
	"pairs[].replica.vm_config_path":             `required: 'T:\VMs\Hyper-V Replica\Virtual Machines\<VM id>.vmcx'`,
	"pairs[].replication":                        "Enable-VMReplication settings",
	"pairs[].replication.port":                   "replica server port",
	"pairs[].replication.authentication":         "Kerberos | Certificate",
	"pairs[].replication.certificate_thumbprint": "40 hex digits; only with Certificate",
	"pairs[].replication.frequency":              "30s | 300s | 900s",
	"pairs[].replication.compression":            "compress replication traffic",
	"pairs[].replication.initial":                "use_existing (Start-VMInitialReplication -UseBackup) | network",
	"resync_interval":                            "every pair is reconciled at least this often, events or not",
	"workers":                                    "pairs reconciled at the same time",
	"shutdown_timeout":                           "SIGTERM: time for the running steps to finish",
	"hooks":                                      "",
	"hooks.max_wait":                             "longest ?wait= of a hook; keep below the ECX script timeout",
	"retry":                                      "transient step errors, before a pair is parked as Degraded",
	"retry.max_attempts":                         "tries per step",
	"retry.initial_backoff":                      "first wait, doubled after each try",
	"retry.max_backoff":                          "longest wait",
}

// PrintDefaults writes every default as commented YAML (what
// `hvro check-config --print-defaults` shows), with one entry of clusters
// and pairs holding the defaults of an entry.
func PrintDefaults(w io.Writer) error {
	c := Defaults()
	c.Clusters = []Cluster{DefaultCluster()}
	c.Clusters[0].Servers = map[string]Server{}
	c.Pairs = []Pair{DefaultPair()}
	doc := encode(reflect.ValueOf(c).Elem(), "", true)
	doc.HeadComment = "hvro defaults (hvro check-config --print-defaults).\n" +
		"Empty values have no default: those marked required must be set.\n" +
		"Secrets are never inline: *_file (mode 0600) or *_env (a variable's name)."
	return writeYAML(w, doc)
}

// MarshalYAML writes c as hvro.yaml: durations as "5m", secrets only as
// their *_file or *_env, so the output loads again.
func (c Config) MarshalYAML() (any, error) {
	return encode(reflect.ValueOf(c), "", false), nil
}

func writeYAML(w io.Writer, n *yaml.Node) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return fmt.Errorf("write defaults: %w", err)
	}
	return enc.Close()
}

// encode turns v into a yaml.Node; gpath is v's generic path (see docs).
func encode(v reflect.Value, gpath string, comments bool) *yaml.Node {
	switch {
	case v.Type() == durationType:
		d := time.Duration(v.Int())
		s := fmtDuration(d)
		if strings.HasSuffix(gpath, "replication.frequency") && d%time.Second == 0 {
			s = strconv.FormatInt(int64(d/time.Second), 10) + "s" // as Hyper-V counts
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	case v.Kind() == reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			fp := name
			if gpath != "" {
				fp = gpath + "." + name
			}
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}
			val := encode(v.Field(i), fp, comments)
			if comments {
				// yaml.v3 drops a key's line comment before a flow
				// collection ("[]", "{}"); that value carries it instead.
				if val.Style == yaml.FlowStyle {
					val.LineComment = docs[fp]
				} else {
					key.LineComment = docs[fp]
				}
			}
			n.Content = append(n.Content, key, val)
		}
		if t == reflect.TypeFor[Server]() {
			n.Style = yaml.FlowStyle
		}
		return n
	case v.Kind() == reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Type().Elem().Kind() == reflect.String {
			n.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			n.Content = append(n.Content, encode(v.Index(i), gpath+"[]", comments))
		}
		return n
	case v.Kind() == reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Content = append(n.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k},
				encode(v.MapIndex(reflect.ValueOf(k)), gpath+".*", comments))
		}
		return n
	case v.Kind() == reflect.String:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.String()}
	case v.Kind() == reflect.Int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}
	case v.Kind() == reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}
	}
	panic(fmt.Sprintf("config: no encoder for %s at %s", v.Type(), gpath))
}
