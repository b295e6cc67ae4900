package orchestrator

import "fmt"

// SideState is where one side of a pair stands.
type SideState struct {
	Side    Side
	Settled bool
	Host    string // the Online owner's host key when settled
	Why     string // why not settled
}

// Desired is what the observations ask for: the VM running on the Online
// owner of the primary-side group, replicating to the Online owner of the
// replica-side group.
type Desired struct {
	Primary, Replica SideState
}

// Decide computes the desired hosts from the latest observations. A side
// whose group is pending, failed, ownerless, or whose API cannot be read
// is unsettled: hvro waits rather than guesses (I2: the VM only ever starts
// on the Online owner of the primary-side group).
func Decide(spec PairSpec, primaryCluster string, groups map[GroupKey]GroupState, clusters Clusters) Desired {
	side := func(cluster string) SideState {
		s := spec.Sides[cluster]
		st := SideState{Side: s}
		g, ok := groups[GroupKey{s.Cluster, s.Group}]
		if !ok {
			st.Why = fmt.Sprintf("group %s/%s not observed yet", s.Cluster, s.Group)
			return st
		}
		o := g.Effective()
		switch {
		case o.Err != "":
			st.Why = fmt.Sprintf("ECX API of %s unreachable: %s", s.Cluster, o.Err)
		case o.Status != "Online":
			st.Why = fmt.Sprintf("group %s/%s is %s", s.Cluster, s.Group, o)
		case o.Owner == "":
			st.Why = fmt.Sprintf("group %s/%s is Online without an owner", s.Cluster, s.Group)
		default:
			h, known := clusters.host(s.Cluster, o.Owner)
			if !known {
				st.Why = fmt.Sprintf("group %s/%s is Online on %q, which is not a configured server of %s", s.Cluster, s.Group, o.Owner, s.Cluster)
				return st
			}
			st.Settled, st.Host = true, h
		}
		return st
	}
	return Desired{Primary: side(primaryCluster), Replica: side(spec.Other(primaryCluster))}
}
