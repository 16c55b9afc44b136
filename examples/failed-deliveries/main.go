// Command failed-deliveries shows another service following hammer's event
// contract (docs/events.md): it keeps its own durable consumer on the EVENTS
// stream, filtered to delivery.failed, and prints one JSON line per delivery
// that hammer gave up on. Replace the printing with what your service does
// (open a ticket, pause a customer, page someone).
//
//	HAMMER_NATS_URL=nats://127.0.0.1:4222 go run .
//
// Several copies may run with the same FAILED_DELIVERIES_CONSUMER name:
// JetStream spreads the events among them, and a restarted copy resumes
// where the consumer left off.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// DefaultConsumer is the durable consumer's name unless
// FAILED_DELIVERIES_CONSUMER says otherwise. It must not be one of hammer's
// own consumers, whose position hammer depends on.
const DefaultConsumer = "example-failed-deliveries"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := serve(log); err != nil {
		log.Error("failed-deliveries stopped", "error", err)
		os.Exit(1)
	}
}

func serve(log *slog.Logger) error {
	url := os.Getenv("HAMMER_NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	durable := os.Getenv("FAILED_DELIVERIES_CONSUMER")
	if durable == "" {
		durable = DefaultConsumer
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := nats.Connect(url, nats.Name("failed-deliveries"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return Run(ctx, js, durable, Printer(os.Stdout), log)
}

// Handler does this service's work for one failed delivery. An error hands
// the event back to JetStream, which redelivers it after retryDelay, so a
// handler must be idempotent (the same delivery may come again).
type Handler func(ctx context.Context, failed events.Outcome) error

// Timings of the consumer. Variables so that a test can shorten them.
var (
	// retryDelay is how soon an event whose handler failed comes back.
	retryDelay = 5 * time.Second
	// newerVersionDelay is how soon an event of a payload version this
	// program does not know comes back; upgrade the program meanwhile.
	newerVersionDelay = time.Minute
	// streamWait is how long to wait between looks for the EVENTS stream,
	// which hammer creates when it first starts.
	streamWait = time.Second
)

// Consumer creates (or updates) the durable consumer named durable: every
// delivery.failed event, explicit acknowledgement, no limit on redeliveries.
// It starts from the beginning of the stream the first time, so failures
// from before this service existed are reported too; pick
// jetstream.DeliverNewPolicy to skip them.
func Consumer(ctx context.Context, js jetstream.JetStream, durable string) (jetstream.Consumer, error) {
	return js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "delivery.failed, for the failed-deliveries example",
		FilterSubject: events.EventFilter(events.KindDeliveryFailed),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
	})
}

// Run consumes failed deliveries with handle until ctx is cancelled, then
// stops pulling, lets the event in hand finish and returns nil. Until hammer
// has created the EVENTS stream, it waits for it.
func Run(ctx context.Context, js jetstream.JetStream, durable string, handle Handler, log *slog.Logger) error {
	var consumer jetstream.Consumer
	for {
		c, err := Consumer(ctx, js, durable)
		if err == nil {
			consumer = c
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			log.Warn("creating the consumer; retrying", "consumer", durable, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(streamWait):
		}
	}
	cc, err := consumer.Consume(func(msg jetstream.Msg) {
		settle(msg, handleOne(ctx, msg, handle), log)
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Warn("consuming failed deliveries", "error", err)
	}))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", durable, err)
	}
	log.Info("following failed deliveries", "consumer", durable)
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

// errNewerVersion and errMalformed are the outcomes of decoding that the
// handler never sees.
var (
	errNewerVersion = errors.New("payload version newer than this program knows")
	errMalformed    = errors.New("not a delivery.failed payload")
)

// handleOne decodes one event and runs handle on it.
func handleOne(ctx context.Context, msg jetstream.Msg, handle Handler) error {
	var head struct {
		V int `json:"v"`
	}
	if json.Unmarshal(msg.Data(), &head) == nil && head.V > events.Version {
		return fmt.Errorf("%w: v %d", errNewerVersion, head.V)
	}
	var failed events.Outcome
	if err := events.Decode(msg.Data(), &failed); err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	if failed.DeliveryID == "" || failed.Status != events.StatusFailed {
		return fmt.Errorf("%w: delivery_id %q, status %q", errMalformed, failed.DeliveryID, failed.Status)
	}
	return handle(ctx, failed)
}

// settle is the one place that answers JetStream: done → Ack; a newer
// version → back for later (a newer copy of this program may take it);
// malformed → Term (no copy ever will); a failed handler → back for a retry.
func settle(msg jetstream.Msg, err error, log *slog.Logger) {
	var ackErr error
	switch {
	case err == nil:
		ackErr = msg.Ack()
	case errors.Is(err, errNewerVersion):
		log.Warn("holding an event for a newer version of this program", "subject", msg.Subject(), "error", err)
		ackErr = msg.NakWithDelay(newerVersionDelay)
	case errors.Is(err, errMalformed):
		log.Error("dropping an event", "subject", msg.Subject(), "error", err)
		ackErr = msg.TermWithReason(err.Error())
	default:
		log.Warn("handling a failed delivery; will retry", "subject", msg.Subject(), "error", err)
		ackErr = msg.NakWithDelay(retryDelay)
	}
	if ackErr != nil {
		log.Warn("answering JetStream", "subject", msg.Subject(), "error", ackErr)
	}
}

// Line is what Printer writes for each failed delivery.
type Line struct {
	DeliveryID     string    `json:"delivery_id"`
	MessageID      string    `json:"message_id"`
	TopicID        string    `json:"topic_id"`
	SubscriptionID string    `json:"subscription_id"`
	URL            string    `json:"url"`
	Reason         string    `json:"reason"`
	Attempts       int       `json:"attempts"`
	At             time.Time `json:"at"`
}

// Printer is the example's Handler: one JSON line per failed delivery on w.
func Printer(w io.Writer) Handler {
	enc := json.NewEncoder(w)
	return func(_ context.Context, o events.Outcome) error {
		return enc.Encode(Line{
			DeliveryID: o.DeliveryID, MessageID: o.MessageID, TopicID: o.TopicID,
			SubscriptionID: o.SubscriptionID, URL: o.URL, Reason: o.Reason,
			Attempts: o.Attempts, At: o.At,
		})
	}
}
