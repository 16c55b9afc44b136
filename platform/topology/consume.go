package topology

import "time"

// PullHeartbeat is how often JetStream tells an idle pull consumer that its
// pull request is still open; the client pulls again after two missed
// beats. Under load (make bench), now and then the server stops answering a
// pull request the client still counts on (no pull request waiting on the
// server, none of its messages unacknowledged, no error to the client), and
// the consumer stops until the client notices: with nats.go's default, half
// the 30 s expiry, that took 30 s; with 1 s it takes 2 s. Every service's
// Consume passes it with jetstream.PullHeartbeat.
const PullHeartbeat = time.Second
