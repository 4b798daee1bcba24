package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// join asks the nodes at addrs (client addresses) to add this node to their
// cluster, trying each in turn for up to a minute.
func join(addrs []string, id, raftAddr string, log *slog.Logger) error {
	body, _ := json.Marshal(map[string]string{"id": id, "address": raftAddr})
	client := &http.Client{Timeout: 45 * time.Second}
	deadline := time.Now().Add(time.Minute)
	var last error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		for _, a := range addrs {
			resp, err := client.Post("http://"+a+"/cluster/join", "application/json", bytes.NewReader(body))
			if err != nil {
				last = err
				continue
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				log.Info("joined the cluster", "via", a)
				return nil
			}
			last = fmt.Errorf("%s: %s: %s", a, resp.Status, bytes.TrimSpace(msg))
			if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest {
				return fmt.Errorf("join refused: %w", last)
			}
		}
		time.Sleep(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second))
	}
	return fmt.Errorf("could not join via %v: %w", addrs, last)
}

// loopbackOnly allows configuration changes only from this machine while
// node-to-node TLS is not configured.
func loopbackOnly(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("cluster changes are accepted only from loopback until node TLS is configured")
	}
	return nil
}
