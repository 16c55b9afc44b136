package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
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
	t, err := s.catalog.CreateTopic(c.Request().Context(), catalog.Topic{ID: *f.ID, Name: *f.Name, CreatedAt: now()})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return alreadyExists("topic")
		}
		return storeError(err)
	}
	return c.JSON(http.StatusOK, topicOut(t))
}

func (s *Server) getTopic(c echo.Context) error {
	return getOne(c, "topic", s.catalog.Topic, topicOut)
}

func (s *Server) listTopics(c echo.Context) error {
	p, aerr := parseList(c.QueryParams())
	if aerr != nil {
		return aerr
	}
	rows, err := s.catalog.ListTopics(c.Request().Context(), p)
	if err != nil {
		return storeError(err)
	}
	return c.JSON(http.StatusOK, map[string][]Topic{"topics": store.Map(rows, topicOut)})
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
	var t catalog.Topic
	var err error
	if f.Name != nil {
		t, err = s.catalog.RenameTopic(ctx, id, *f.Name, now())
	} else {
		t, err = s.catalog.Topic(ctx, id)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
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
	deleted, err := s.catalog.DeleteTopic(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("topic")
		}
		return storeError(err)
	}
	for _, sub := range deleted {
		s.view.deleted(ctx, sub)
	}
	return c.NoContent(http.StatusNoContent)
}
