package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Bucket names. They are part of the file format (SCHEMA.md).
var (
	bucketMeta         = []byte("meta")
	bucketPairs        = []byte("pairs")
	bucketObservations = []byte("observations")
	bucketOperations   = []byte("operations")
	bucketOpsByPair    = []byte("ops_by_pair")
	bucketOpsRunning   = []byte("ops_running")
	bucketEvents       = []byte("events")
)

// dataBuckets are the buckets every migrated store has besides meta.
var dataBuckets = [][]byte{bucketPairs, bucketObservations, bucketOperations, bucketOpsByPair, bucketOpsRunning, bucketEvents}

// Meta keys.
var (
	metaApp     = []byte("app")
	metaSchema  = []byte("schema")
	metaCreated = []byte("created")
	metaAppName = "hvro"
)

// Record versions, written as "v" in every value. A record version changes
// only together with a schema migration that rewrites every record of its
// kind, so a decoder accepts exactly the current version.
const (
	pairVersion        = 1
	observationVersion = 1
	operationVersion   = 1
	eventVersion       = 1
)

// encodeRecord writes rec as a JSON object with "v" as its first member.
func encodeRecord(version int, rec any) ([]byte, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("record encodes to %.20q, not a JSON object", body)
	}
	out := make([]byte, 0, len(body)+8)
	out = append(out, `{"v":`...)
	out = strconv.AppendInt(out, int64(version), 10)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// decodeRecord checks the envelope and version and fills rec. Any problem is
// returned plain; callers wrap it in a DamagedError naming bucket and key.
func decodeRecord(data []byte, version int, rec any) error {
	v, ok := versionPrefix(data)
	if !ok {
		// Not as encodeRecord writes it (keys reordered by hand, say):
		// find "v" the slow way.
		if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
			return fmt.Errorf("not a JSON object: starts %.12q", data)
		}
		var env struct {
			V *json.RawMessage `json:"v"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			return fmt.Errorf("not a JSON object: %w", err)
		}
		if env.V == nil {
			return fmt.Errorf("no record version \"v\"")
		}
		n, err := strconv.Atoi(string(*env.V))
		if err != nil {
			return fmt.Errorf("record version %s is not an integer", *env.V)
		}
		v = n
	}
	if v != version {
		return fmt.Errorf("record version %d, this hvro reads version %d", v, version)
	}
	// Unmarshal also rejects trailing data; "v" is ignored as unknown.
	if err := json.Unmarshal(data, rec); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// versionPrefix reads the version of a record that starts the way
// encodeRecord writes it: {"v":N, or {"v":N}.
func versionPrefix(data []byte) (int, bool) {
	const prefix = `{"v":`
	if !bytes.HasPrefix(data, []byte(prefix)) {
		return 0, false
	}
	rest := data[len(prefix):]
	n := 0
	for n < len(rest) && n < 9 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n == len(rest) || (rest[n] != ',' && rest[n] != '}') || (n > 1 && rest[0] == '0') {
		return 0, false
	}
	v, err := strconv.Atoi(string(rest[:n]))
	return v, err == nil
}

func idKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), id)
}

func parseIDKey(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

func observationKey(cluster, group string) []byte {
	k := make([]byte, 0, len(cluster)+1+len(group))
	k = append(k, cluster...)
	k = append(k, 0)
	return append(k, group...)
}

// opPairKey is the ops_by_pair index key: pair NUL id.
func opPairKey(pair string, id uint64) []byte {
	k := make([]byte, 0, len(pair)+9)
	k = append(k, pair...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// keyString renders a key of bucket for error messages.
func keyString(bucket, k []byte) string {
	switch string(bucket) {
	case string(bucketOperations), string(bucketEvents), string(bucketOpsRunning):
		if id, ok := parseIDKey(k); ok {
			return strconv.FormatUint(id, 10)
		}
	case string(bucketObservations):
		if c, g, ok := strings.Cut(string(k), "\x00"); ok {
			return strconv.Quote(c + "/" + g)
		}
	case string(bucketOpsByPair):
		if len(k) > 9 && k[len(k)-9] == 0 {
			id, _ := parseIDKey(k[len(k)-8:])
			return fmt.Sprintf("%q#%d", k[:len(k)-9], id)
		}
	}
	return strconv.Quote(string(k))
}
