package topology

import "time"

// PullHeartbeat is how often JetStream tells an idle pull consumer that its
// pull request is still open; the client starts a new pull after two missed
// beats. nats.go's default, half the 30 s expiry, let a pull request the
// client believed open and the server no longer held stop a consumer for
// 30 s under load (the deliverer, in make bench). Every service's Consume
// passes it with jetstream.PullHeartbeat.
const PullHeartbeat = 2 * time.Second
