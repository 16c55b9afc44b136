// Command hammer-healthcheck is the health probe of hammer's container image.
// The image is distroless (no shell, no curl), so docker-compose's
// healthcheck runs this instead: it GETs one URL and exits 0 when the answer
// is 2xx, 1 otherwise. Kubernetes does not need it; its probes are HTTP.
//
//	hammer-healthcheck http://127.0.0.1:9090/readyz
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// timeout stays under docker's default healthcheck timeout (30s) and well
// above what a local /readyz takes.
const timeout = 5 * time.Second

func main() {
	if len(os.Args) != 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: hammer-healthcheck URL   (exits 0 when GET URL answers 2xx)")
		os.Exit(2)
	}
	if err := probe(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "hammer-healthcheck:", err)
		os.Exit(1)
	}
}

func probe(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("building request for %s: %w", url, err)
	}
	// No proxy from the environment: the target is always the container itself.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}
