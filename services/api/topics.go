package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/services/api/app"
	"github.com/hammer-webhooks/hammer/sql/store"
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

func (f *topicFields) input() app.TopicInput {
	return app.TopicInput{ID: f.ID, Name: f.Name}
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
	if err := app.CheckTopic(f.input(), pathID); err != nil {
		return nil, fromApp(err)
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
	t, err := s.app.CreateTopic(c.Request().Context(), f.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, topicOut(t))
}

func (s *Server) getTopic(c echo.Context) error {
	return getOne(c, "topic", s.app.Topic, topicOut)
}

func (s *Server) listTopics(c echo.Context) error {
	p, aerr := parseList(c.QueryParams())
	if aerr != nil {
		return aerr
	}
	rows, err := s.app.ListTopics(c.Request().Context(), p)
	if err != nil {
		return err
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
	t, err := s.app.UpdateTopic(c.Request().Context(), id, f.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, topicOut(t))
}

// deleteTopic deletes a topic and its subscriptions.
func (s *Server) deleteTopic(c echo.Context) error {
	id, ok := pathID(c)
	if !ok {
		return notFound("topic")
	}
	if err := s.app.DeleteTopic(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
