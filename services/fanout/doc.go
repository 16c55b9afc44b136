// Package fanout is hammer's fanout service; Run starts it.
package fanout
