// Package api is hammer's api service; Run starts it.
package api
