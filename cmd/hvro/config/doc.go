// Package config loads and validates hvro.yaml (CONTRACTS.md section 1).
//
// Load and Parse decode strictly (an unknown key is an error), start from
// the defaults (Defaults, DefaultCluster, DefaultPair), resolve relative
// paths against the config file's folder, check every rule and read every
// secret the file names. They report all problems at once, each with its
// YAML path and line, as Problems; `hvro check-config` prints them.
//
// The one thing to know: secret values live only in Secret fields, filled
// from `*_file` or `*_env` and never inline in the YAML. A Secret prints,
// marshals and logs as "[redacted]"; call Value where the secret is used.
package config
