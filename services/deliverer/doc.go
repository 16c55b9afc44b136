// Package deliverer is hammer's deliverer service; Run starts it.
package deliverer
