// Package clusterapi is a client for the EXPRESSCLUSTER X RESTful API: who
// owns each failover group, and group operations. It fails over between a
// cluster's endpoints and checks the result code even inside HTTP 200.
//
// Trust a Group's Owner only when its Status is Online; compare server names
// with hostname.Same (ECX, Hyper-V and Windows spell them differently).
// Operations are asynchronous on the cluster: StartGroup, StopGroup and
// MoveGroup return once the cluster accepted the request; WaitGroupOnline
// and WaitGroupOffline poll for the outcome. Every error from an API call is
// an *Error whose kind (ErrAuth, ErrNotFound, ErrAPI, ErrTransport,
// ErrDecode) works with errors.Is. The password never appears in logs or errors.
// Names and statuses in answers are validated before they are returned (a
// server name or owner is a host name; other names and statuses are
// printable text without control or format characters, at most 255 and 64
// bytes): they become metric labels and log fields, so an answer with any
// other value is an ErrDecode naming the field with an escaped excerpt.
package clusterapi
