// Package logging builds the zap logger every service is handed: JSON lines
// on stderr with stable snake_case keys.
package logging

import (
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a JSON logger at level, tagged with the service's name.
func New(level zapcore.Level, service string) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(os.Stderr), level)
	return zap.New(core, zap.AddCaller()).With(zap.String("service", service))
}
