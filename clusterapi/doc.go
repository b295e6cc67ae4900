// Package clusterapi is a client for the EXPRESSCLUSTER X RESTful API: who
// owns each failover group, and group operations. It fails over between a
// cluster's endpoints and checks the result code even inside HTTP 200.
package clusterapi
