package main

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/process"
)

// startNATS runs hammer dev's embedded NATS server with JetStream storing
// under storeDir, listening on addr so that other processes (a second
// hammer deliverer, say) can join.
func startNATS(addr, storeDir string, log *zap.Logger) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("HAMMER_DEV_NATS_ADDR=%q: want host:port", addr)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("HAMMER_DEV_NATS_ADDR=%q: the port is not a number", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The server would only log a taken port; checking first makes
		// it one clear line.
		ln, err := process.Listen("HAMMER_DEV_NATS_ADDR", addr)
		if err != nil {
			return nil, err
		}
		ln.Close()
	}
	if host == "" {
		host = "0.0.0.0"
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "hammer-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring the embedded NATS: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log.Sugar()}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(60 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("the embedded NATS did not start on %s (its log says why): set HAMMER_DEV_NATS_ADDR to a free address, or HAMMER_NATS_URL to a NATS of yours", addr)
	}
	log.Info("embedded NATS ready", zap.String("url", srv.ClientURL()), zap.String("store_dir", storeDir))
	return srv, nil
}

// natsLogger sends the embedded server's log to zap. Its notices (a banner
// of a dozen lines at every start) are debug-level here.
type natsLogger struct{ s *zap.SugaredLogger }

func (l natsLogger) Noticef(format string, v ...any) { l.s.Debugf(format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.s.Warnf(format, v...) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  { l.s.Debugf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any)  { l.s.Debugf(format, v...) }
