// Package e2e proves hammer as people run it: the real hammer binary as
// separate api, fanout, deliverer and recorder processes, a real
// nats-server process (or a three-node JetStream cluster) and a PostgreSQL
// server that the tests can stop and start again, with webhook receivers
// in the test process.
//
// The tests build the binaries once per run, so they take a while; -short
// skips them. docs/testing.md says how to run one scenario.
package e2e
