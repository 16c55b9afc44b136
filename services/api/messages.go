package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/record"
)

// The read side of messages shows what the recorder has written, a moment
// behind the publish.

func (s *Server) getMessage(c echo.Context) error {
	return getOne(c, "message", s.app.Message, messageOut)
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
	rows, err := s.app.ListMessages(c.Request().Context(), record.MessageFilter{TopicID: topicID}, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string][]Message{"messages": store.Map(rows, messageOut)})
}

// deleteMessage removes a message from the stream and the record.
func (s *Server) deleteMessage(c echo.Context) error {
	id, ok := pathID(c)
	if !ok {
		return notFound("message")
	}
	if err := s.app.DeleteMessage(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
