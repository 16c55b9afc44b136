package recorder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/sql/store"
	stored "github.com/hammer-webhooks/hammer/sql/store/record"
)

// batch is the events awaiting one transaction.
type batch struct {
	records []*record
	bytes   int // of message bodies, requests and responses
}

// decodeRecord decodes msg into the rows it adds to a batch. Events that are
// not recorded are acknowledged and undecodable ones terminated on the
// spot; both give nil.
func (s *Service) decodeRecord(msg jetstream.Msg) *record {
	meta, err := msg.Metadata()
	s.metrics.events.WithLabelValues(label(meta)).Inc()
	var rec *record
	if err != nil {
		err = fmt.Errorf("reading metadata: %w", err)
	} else {
		rec, err = decode(msg, meta)
	}
	switch {
	case errors.Is(err, errSkip):
		if err := msg.Ack(); err != nil {
			s.log.Warn("acking an event that is not recorded", zap.String("subject", msg.Subject()), zap.Error(err))
		}
		return nil
	case err != nil:
		s.terminate(msg, fmt.Errorf("undecodable event: %w", err))
		return nil
	}
	return rec
}

func label(meta *jetstream.MsgMetadata) string {
	if meta == nil {
		return "unknown"
	}
	for _, src := range sources {
		if src.stream == meta.Stream {
			return src.label
		}
	}
	return "unknown"
}

// flush writes records in one transaction and acks them after the commit.
// When Postgres refuses the batch for its content (a data exception or a
// violated constraint), it writes each half on its own, down to the single
// event at fault, which it terminates: one bad event never wedges the
// stream. Any other failure naks every event with a delay; nothing is acked
// unless it was committed.
func (s *Service) flush(ctx context.Context, records []*record) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	s.metrics.batchSize.Observe(float64(len(records)))
	s.write(ctx, records)
	s.metrics.flush.Observe(time.Since(start).Seconds())
}

func (s *Service) write(ctx context.Context, records []*record) {
	err := s.commit(ctx, records)
	if err == nil {
		for _, r := range records {
			if err := r.msg.Ack(); err != nil {
				// JetStream redelivers it; writing it again changes nothing.
				s.log.Warn("acking a recorded event", zap.String("subject", r.msg.Subject()), zap.Error(err))
			}
		}
		return
	}
	s.metrics.flushErrors.Inc()
	if refusedForContent(err) && ctx.Err() == nil {
		if len(records) == 1 {
			s.terminate(records[0].msg, fmt.Errorf("refused by Postgres: %w", err))
			return
		}
		s.log.Warn("Postgres refused a batch; writing its halves apart to find the event at fault",
			zap.Int("events", len(records)), zap.Error(err))
		half := len(records) / 2
		s.write(ctx, records[:half])
		s.write(ctx, records[half:])
		return
	}
	s.log.Error("writing a batch failed; retrying its events", zap.Int("events", len(records)), zap.Error(err))
	for _, r := range records {
		if err := r.msg.NakWithDelay(retryDelay(r.msg)); err != nil {
			s.log.Warn("nakking an event", zap.String("subject", r.msg.Subject()), zap.Error(err))
		}
	}
}

// commit writes the batch in one transaction and one round trip (the
// store's record.Write). Rows whose topic or subscription is gone are
// dropped by its queries' joins.
func (s *Service) commit(ctx context.Context, records []*record) error {
	return stored.New(s.pool).Write(ctx, build(records))
}

// refusedForContent reports an error that comes from the rows themselves,
// which retrying the same rows would only repeat.
func refusedForContent(err error) bool {
	return errors.Is(err, store.ErrRefused)
}

func (s *Service) terminate(msg jetstream.Msg, reason error) {
	fields := []zap.Field{zap.String("subject", msg.Subject()), zap.Error(reason)}
	if meta, err := msg.Metadata(); err == nil {
		fields = append(fields, zap.String("stream", meta.Stream), zap.Uint64("stream_sequence", meta.Sequence.Stream))
	}
	s.log.Error("dropping an event the recorder cannot record", fields...)
	s.metrics.terminated.Inc()
	if err := msg.Term(); err != nil {
		s.log.Warn("terminating an event", zap.String("subject", msg.Subject()), zap.Error(err))
	}
}

// retryDelay doubles from one second with each delivery of msg, up to 30 s.
func retryDelay(msg jetstream.Msg) time.Duration {
	const first, most = time.Second, 30 * time.Second
	delivered := uint64(1)
	if meta, err := msg.Metadata(); err == nil {
		delivered = meta.NumDelivered
	}
	d := first
	for i := uint64(1); i < delivered && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
