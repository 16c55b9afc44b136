package fanout

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/platform/tracing"
)

// accepted is one readable message of a batch.
type accepted struct {
	msg      jetstream.Msg
	message  events.Message
	sequence uint64 // in MESSAGES, where the deliverer reads the body
	// delivered is how often JetStream has handed the message out; it
	// lengthens the delay of each retry.
	delivered uint64
	// pending are the delivery events published for it, awaiting PubAcks.
	pending []jetstream.PubAckFuture
	failed  error
}

// handleBatch fans out one batch and decides every message's fate in one
// place: malformed ones are terminated, the rest acked once every delivery
// event they caused is acknowledged, or nakked with a delay when anything
// on their way failed. A message is never acked early.
func (s *Service) handleBatch(ctx context.Context, batch []jetstream.Msg) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	defer func() {
		s.metrics.batch.Observe(time.Since(start).Seconds())
		s.metrics.batchSize.Observe(float64(len(batch)))
	}()

	items := make([]*accepted, 0, len(batch))
	var topicIDs []string
	seenTopic := map[string]bool{}
	for _, msg := range batch {
		item, err := read(msg)
		if err != nil {
			s.log.Error("terminating malformed message", zap.String("subject", msg.Subject()), zap.Error(err))
			if err := msg.Term(); err != nil {
				s.log.Warn("terminating message", zap.Error(err))
			}
			s.metrics.messages.WithLabelValues(resultMalformed).Inc()
			continue
		}
		items = append(items, item)
		if !seenTopic[item.message.TopicID] {
			seenTopic[item.message.TopicID] = true
			topicIDs = append(topicIDs, item.message.TopicID)
		}
	}
	if len(items) == 0 {
		return
	}

	subs, err := s.catalog.SubscriptionsOfTopics(ctx, topicIDs)
	if err != nil {
		err = fmt.Errorf("loading subscriptions of %d topics: %w", len(topicIDs), err)
		s.log.Error("fanout batch failed; retrying its messages", zap.Int("messages", len(items)), zap.Error(err))
		for _, item := range items {
			item.failed = err
		}
		s.settle(items)
		return
	}
	byTopic := make(map[string][]subscription.Subscription, len(topicIDs))
	for _, sub := range subs {
		byTopic[sub.TopicID] = append(byTopic[sub.TopicID], sub)
	}

	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, item := range items {
		// The message's trace goes on in each of its delivery events.
		tctx, span := tracing.StartConsumer(ctx, item.msg.Headers(), "fanout message")
		tracing.SetString(span, "hammer.message_id", item.message.ID)
		for _, sub := range byTopic[item.message.TopicID] {
			// A subscription created after the message was accepted never
			// gets it, whenever fanout happens to run.
			if sub.CreatedAt.After(item.message.CreatedAt) {
				continue
			}
			out := deliveryMsg(item, sub, now)
			tracing.Inject(tctx, out.Header)
			future, err := s.js.PublishMsgAsync(out, jetstream.WithStallWait(stallWait))
			if err != nil {
				item.failed = fmt.Errorf("publishing delivery to subscription %s: %w", sub.ID, err)
				break
			}
			item.pending = append(item.pending, future)
		}
		tracing.Fail(span, item.failed)
		span.End()
	}
	for _, item := range items {
		s.await(ctx, item)
	}
	s.settle(items)
}

// read decodes one message of MESSAGES and its stream metadata.
func read(msg jetstream.Msg) (*accepted, error) {
	message, err := events.MessageFromHeaders(msg.Headers(), msg.Data())
	if err != nil {
		return nil, err
	}
	meta, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("message %s: reading metadata: %w", message.ID, err)
	}
	return &accepted{msg: msg, message: message, sequence: meta.Sequence.Stream, delivered: meta.NumDelivered}, nil
}

// deliveryMsg is attempt 1 of the delivery of item to sub. Its ID, and so
// its Nats-Msg-Id, depends only on the message and the subscription: a
// message fanned out twice yields the same delivery, which JetStream drops
// inside its duplicate window and the recorder merges after it.
func deliveryMsg(item *accepted, sub subscription.Subscription, now time.Time) *nats.Msg {
	m := item.message
	id := events.DeliveryID(m.ID, m.CreatedAt, sub.ID)
	delivery := events.Delivery{
		DeliveryRef: events.DeliveryRef{
			DeliveryID:        id,
			MessageID:         m.ID,
			TopicID:           m.TopicID,
			SubscriptionID:    sub.ID,
			MessageSequence:   item.sequence,
			MessageCreatedAt:  m.CreatedAt,
			DeliveryCreatedAt: now,
		},
		Target: events.Target{
			URL:                    events.PublicURL(sub.URL),
			MaxDeliveryAttempts:    sub.MaxDeliveryAttempts,
			DeliveryAttemptDelay:   sub.DeliveryAttemptDelay,
			DeliveryAttemptTimeout: sub.DeliveryAttemptTimeout,
		},
		Attempt:   1,
		NotBefore: now,
	}
	data, err := events.Encode(&delivery)
	if err != nil {
		// Encode fails only for a non-pointer or unknown payload type.
		panic(fmt.Sprintf("encoding a delivery event: %v", err))
	}
	out := nats.NewMsg(events.DeliverySubject(sub.ID))
	out.Data = data
	out.Header.Set(events.HeaderMsgID, events.DeliveryMsgID(id, 1))
	return out
}

// await waits for the PubAck of every delivery event of item.
func (s *Service) await(ctx context.Context, item *accepted) {
	for _, future := range item.pending {
		select {
		case <-future.Ok():
			s.metrics.deliveries.Inc()
		case err := <-future.Err():
			if item.failed == nil {
				item.failed = fmt.Errorf("publishing delivery on %s: %w", future.Msg().Subject, err)
			}
		case <-ctx.Done():
			if item.failed == nil {
				item.failed = fmt.Errorf("waiting for delivery acknowledgements: %w", ctx.Err())
			}
			return
		}
	}
}

// settle acks the messages whose deliveries are all acknowledged and naks
// the others with a delay that grows with every redelivery.
func (s *Service) settle(items []*accepted) {
	for _, item := range items {
		// Encoded only if something is logged: a message acked logs nothing.
		log := s.log.WithLazy(zap.String("message_id", item.message.ID), zap.String("topic_id", item.message.TopicID))
		if item.failed != nil {
			delay := retryDelay(item.delivered)
			log.Warn("retrying message", zap.Duration("delay", delay), zap.Error(item.failed))
			if err := item.msg.NakWithDelay(delay); err != nil {
				log.Warn("nakking message", zap.Error(err))
			}
			s.metrics.messages.WithLabelValues(resultRetried).Inc()
			continue
		}
		if err := item.msg.Ack(); err != nil {
			// JetStream redelivers it after AckWait; the same delivery IDs
			// come out again.
			log.Warn("acking message", zap.Error(err))
		}
		s.metrics.messages.WithLabelValues(resultFannedOut).Inc()
	}
}

// retryDelay doubles from one second with each delivery, up to 30 s.
func retryDelay(delivered uint64) time.Duration {
	const first, most = time.Second, 30 * time.Second
	d := first
	for i := uint64(1); i < delivered && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
