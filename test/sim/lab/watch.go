package lab

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// watcher makes a disk follow a group of any ECX RESTful API by polling it:
// the disk is online on the owner while the group is Online, offline while
// it is Offline or failed, and left alone while it is Pending.
type watcher struct {
	lab   *Lab
	disk  string
	group DiskGroup
}

func (w *watcher) run() {
	defer w.lab.wg.Done()
	every := w.group.Poll
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	// Close cuts a poll short instead of waiting for its timeout.
	running, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-w.lab.stop:
			stop()
		case <-running.Done():
		}
	}()
	for {
		select {
		case <-running.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(running, every+2*time.Second)
			if err := w.poll(ctx, false); err != nil && running.Err() == nil {
				w.lab.asyncError("disk %s follows %s group %s: %v", w.disk, w.group.URL, w.group.Group, err)
			}
			cancel()
		}
	}
}

var watchClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // a lab reading a lab
}

func (w *watcher) poll(ctx context.Context, initial bool) error {
	u := strings.TrimRight(w.group.URL, "/") + "/api/v1/groups/" + url.PathEscape(w.group.Group)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(w.group.Username, w.group.Password)
	resp, err := watchClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	var doc struct {
		Result struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"result"`
		Groups []struct {
			Name    string  `json:"name"`
			Status  string  `json:"status"`
			Current *string `json:"current"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("HTTP %d, body is not the groups JSON: %.80q", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusOK || doc.Result.Code != 0 {
		return fmt.Errorf("HTTP %d, result code %d: %s", resp.StatusCode, doc.Result.Code, doc.Result.Message)
	}
	if len(doc.Groups) != 1 {
		return fmt.Errorf("answer lists %d groups, want 1", len(doc.Groups))
	}
	g := doc.Groups[0]
	owner := ""
	if g.Current != nil && *g.Current != "None" {
		owner = *g.Current
	}
	cur, _ := w.lab.World.DiskOwner(w.disk)
	switch {
	case g.Status == "Online" && owner != "":
		if strings.EqualFold(cur, owner) {
			return nil
		}
		if cur != "" {
			if err := w.lab.World.DiskOffline(w.disk, cur); err != nil {
				return err
			}
		}
		if initial {
			return w.lab.World.PlaceDisk(w.disk, owner)
		}
		return w.lab.World.DiskOnline(w.disk, owner)
	case strings.HasSuffix(g.Status, "Pending"):
		return nil
	default:
		if cur != "" {
			return w.lab.World.DiskOffline(w.disk, cur)
		}
	}
	return nil
}
