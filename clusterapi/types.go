package clusterapi

// GroupStatus is a failover group's status as the API spells it, spaces
// included. Strings the client does not know are kept as they came, never
// mapped to a known status.
type GroupStatus string

const (
	Online         GroupStatus = "Online"
	Offline        GroupStatus = "Offline"
	OnlinePending  GroupStatus = "Online Pending"
	OfflinePending GroupStatus = "Offline Pending"
	OnlineFailure  GroupStatus = "Online Failure"
	OfflineFailure GroupStatus = "Offline Failure"
)

// Known tells whether s is one of the six group statuses above.
func (s GroupStatus) Known() bool {
	switch s {
	case Online, Offline, OnlinePending, OfflinePending, OnlineFailure, OfflineFailure:
		return true
	}
	return false
}

// Settled tells whether the group is out of transition: Online, Offline or
// one of the failures. Pending and unknown statuses are not settled.
func (s GroupStatus) Settled() bool {
	switch s {
	case Online, Offline, OnlineFailure, OfflineFailure:
		return true
	}
	return false
}

// Failed tells whether the group is in Online Failure or Offline Failure.
func (s GroupStatus) Failed() bool { return s == OnlineFailure || s == OfflineFailure }

// Group is a failover group. Owner is the ECX server name in the API's
// "current" field, "" when the group runs nowhere (the API sends "None",
// null or ""). Trust Owner as the active node only when Status is Online.
type Group struct {
	Name      string
	Status    GroupStatus
	Owner     string
	Resources []string // resource names, when the answer lists them
}

// ServerStatus is a server's status as the API spells it (Online and
// Offline seen; other strings kept as they came).
type ServerStatus string

const (
	ServerOnline  ServerStatus = "Online"
	ServerOffline ServerStatus = "Offline"
)

// Server is a cluster node.
type Server struct {
	Name   string
	Status ServerStatus
}

// ClusterInfo is the cluster object: its name and overall status
// (Normal, Caution, Error, ... as the API spells it).
type ClusterInfo struct {
	Name   string
	Status string
}

// Resource is a group resource (sd, fip, script, ...).
type Resource struct {
	Name   string
	Type   string
	Status string
	Owner  string // "" when it runs nowhere
	Group  string
}
