package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/record"
)

// The read side of messages shows what the recorder has written, a moment
// behind the publish.

func (s *Server) getMessage(c echo.Context) error {
	return getOne(c, "message", s.record.Message, messageOut)
}

func (s *Server) listMessages(c echo.Context) error {
	q := c.QueryParams()
	p, aerr := parseList(q)
	if aerr != nil {
		return aerr
	}
	topicID, aerr := idFilter(q, "topic_id")
	if aerr != nil {
		return aerr
	}
	rows, err := s.record.ListMessages(c.Request().Context(), record.MessageFilter{TopicID: topicID}, p)
	if err != nil {
		return storeError(err)
	}
	return c.JSON(http.StatusOK, map[string][]Message{"messages": store.Map(rows, messageOut)})
}

// deleteMessage removes a message from the MESSAGES stream first (so no
// deliverer can read its body any more and its pending deliveries end
// message_deleted), then its row and its deliveries. A retry after a failure
// in between finds the stream message gone and finishes the rows.
func (s *Server) deleteMessage(c echo.Context) error {
	id, ok := pathID(c)
	if !ok {
		return notFound("message")
	}
	ctx := c.Request().Context()
	m, err := s.record.Message(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("message")
		}
		return storeError(err)
	}
	if err := s.pub.connected(); err != nil {
		return unavailable(err)
	}
	sctx, cancel := context.WithTimeout(ctx, s.pub.timeout)
	defer cancel()
	if err := s.deleteFromStream(sctx, m); err != nil {
		return unavailable(err)
	}
	if err := s.record.DeleteMessage(ctx, id, time.Now().UTC()); err != nil {
		return storeError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// deleteFromStream deletes m's stream message, after checking that the
// sequence still holds m (a stream that was recreated numbers anew).
func (s *Server) deleteFromStream(ctx context.Context, m record.Message) error {
	stream, err := s.js.Stream(ctx, events.StreamMessages)
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", events.StreamMessages, err)
	}
	seq := uint64(m.StreamSequence)
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // expired or deleted already
	} else if err != nil {
		return fmt.Errorf("reading message %s at sequence %d: %w", m.ID, seq, err)
	}
	if raw.Header.Get(events.HeaderMessageID) != m.ID {
		return nil
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("deleting message %s at sequence %d: %w", m.ID, seq, err)
	}
	return nil
}
