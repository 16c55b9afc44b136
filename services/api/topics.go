package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/platform/database"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// topicFields is the body of a topic create or PATCH. Timestamps are
// accepted and ignored, so a topic read from the API can be sent back.
type topicFields struct {
	ID        *string         `json:"id"`
	Name      *string         `json:"name"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

type topicRequest struct {
	Topic *topicFields `json:"topic"`
}

// decodeTopic reads and checks a topic body. On create every field is
// required; on PATCH (pathID set) only the named fields are checked.
func decodeTopic(body []byte, pathID string) (*topicFields, *apiError) {
	var req topicRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	f := req.Topic
	if f == nil {
		return nil, invalid("topic", `the body must be {"topic": {...}}`)
	}
	switch {
	case f.ID == nil && pathID == "":
		return nil, invalid("id", "id is required")
	case f.ID != nil && pathID != "" && *f.ID != pathID:
		return nil, invalid("id", "id %q differs from the path's %q; an id cannot be changed", *f.ID, pathID)
	case f.ID != nil:
		if err := checkID("id", *f.ID); err != nil {
			return nil, err
		}
	}
	if f.Name == nil && pathID == "" {
		return nil, invalid("name", "name is required")
	}
	if f.Name != nil {
		if err := checkText("name", *f.Name, maxNameBytes); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (s *Server) createTopic(c echo.Context) error {
	var body json.RawMessage
	if err := readJSON(c, resourceBodyLimit, &body); err != nil {
		return err
	}
	f, aerr := decodeTopic(body, "")
	if aerr != nil {
		return aerr
	}
	t, err := s.q.TopicInsert(c.Request().Context(), dbsqlc.TopicInsertParams{ID: *f.ID, Name: *f.Name, CreatedAt: now()})
	if err = database.Interpret(err); err != nil {
		if errors.Is(err, database.ErrConflict) {
			return alreadyExists("topic")
		}
		return storeError(err)
	}
	return c.JSON(http.StatusOK, topicOut(t))
}

func (s *Server) getTopic(c echo.Context) error {
	return getOne(c, "topic", s.q.TopicGetByID, topicOut)
}

func (s *Server) listTopics(c echo.Context) error {
	p, aerr := parseList(c.QueryParams())
	if aerr != nil {
		return aerr
	}
	ctx := c.Request().Context()
	var rows []dbsqlc.Topic
	var err error
	if p.asc {
		rows, err = s.q.TopicListAsc(ctx, dbsqlc.TopicListAscParams{
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	} else {
		rows, err = s.q.TopicListDesc(ctx, dbsqlc.TopicListDescParams{
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	}
	if err != nil {
		return storeError(database.Interpret(err))
	}
	out := make([]Topic, len(rows))
	for i, t := range rows {
		out[i] = topicOut(t)
	}
	return c.JSON(http.StatusOK, map[string][]Topic{"topics": out})
}

func (s *Server) patchTopic(c echo.Context) error {
	id, ok := pathID(c)
	var body json.RawMessage
	if err := readJSON(c, resourceBodyLimit, &body); err != nil {
		return err
	}
	if !ok {
		return notFound("topic")
	}
	f, aerr := decodeTopic(body, id)
	if aerr != nil {
		return aerr
	}
	ctx := c.Request().Context()
	var t dbsqlc.Topic
	var err error
	if f.Name != nil {
		t, err = s.q.TopicUpdate(ctx, dbsqlc.TopicUpdateParams{ID: id, Name: *f.Name, UpdatedAt: now()})
	} else {
		t, err = s.q.TopicGetByID(ctx, id)
	}
	if err = database.Interpret(err); err != nil {
		if errors.Is(err, database.ErrNotFound) {
			return notFound("topic")
		}
		return storeError(err)
	}
	return c.JSON(http.StatusOK, topicOut(t))
}

// deleteTopic deletes a topic and its subscriptions, then tells the
// deliverers each subscription is gone.
func (s *Server) deleteTopic(c echo.Context) error {
	id, ok := pathID(c)
	if !ok {
		return notFound("topic")
	}
	ctx := c.Request().Context()
	var deleted []dbsqlc.Subscription
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if _, err := q.TopicGetByIDForUpdate(ctx, id); err != nil {
			return database.Interpret(err)
		}
		var err error
		if deleted, err = q.SubscriptionDeleteByTopicID(ctx, id); err != nil {
			return database.Interpret(err)
		}
		_, err = q.TopicDelete(ctx, id)
		return database.Interpret(err)
	})
	if err != nil {
		if errors.Is(err, database.ErrNotFound) {
			return notFound("topic")
		}
		return storeError(err)
	}
	for _, sub := range deleted {
		s.view.deleted(ctx, sub)
	}
	return c.NoContent(http.StatusNoContent)
}
