// Package recorder is hammer's recorder service; Run starts it.
package recorder
