// Package deploy holds no code: it is the folder of files an admin installs
// next to the hvro binary (the ECX start/stop scripts, the systemd unit, the
// Windows service install, the Prometheus alert rules and the Grafana
// dashboard, an example configuration). Its tests keep those files honest:
// the scripts' invocation and line endings, the unit's sandbox, the alerts
// under promtool, and every metric the alerts and the dashboard query being
// one that hvro exports.
package deploy
