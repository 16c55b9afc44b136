package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hammer-webhooks/hammer/platform/database"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// The read side of messages shows what the recorder has written, a moment
// behind the publish.

func (s *Server) getMessage(c echo.Context) error {
	return getOne(c, "message", s.q.MessageGetByID, messageOut)
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
	ctx := c.Request().Context()
	var rows []dbsqlc.Message
	var err error
	if p.asc {
		rows, err = s.q.MessageListAsc(ctx, dbsqlc.MessageListAscParams{TopicID: topicID,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	} else {
		rows, err = s.q.MessageListDesc(ctx, dbsqlc.MessageListDescParams{TopicID: topicID,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	}
	if err != nil {
		return storeError(database.Interpret(err))
	}
	out := make([]Message, len(rows))
	for i, m := range rows {
		out[i] = messageOut(m)
	}
	return c.JSON(http.StatusOK, map[string][]Message{"messages": out})
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
	m, err := s.q.MessageGetByID(ctx, id)
	if err = database.Interpret(err); err != nil {
		if errors.Is(err, database.ErrNotFound) {
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
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		// The tombstone keeps the recorder from recreating the rows from
		// events still in the streams.
		if err := q.DeletedMessageInsert(ctx, dbsqlc.DeletedMessageInsertParams{ID: id, DeletedAt: time.Now().UTC()}); err != nil {
			return database.Interpret(err)
		}
		if _, err := q.DeliveryDeleteByMessageID(ctx, id); err != nil {
			return database.Interpret(err)
		}
		_, err := q.MessageDelete(ctx, id)
		return database.Interpret(err)
	})
	if err != nil && !errors.Is(err, database.ErrNotFound) {
		return storeError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// deleteFromStream deletes m's stream message, after checking that the
// sequence still holds m (a stream that was recreated numbers anew).
func (s *Server) deleteFromStream(ctx context.Context, m dbsqlc.Message) error {
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
