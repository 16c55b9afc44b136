package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/record"
)

// Deliveries and attempts are read-only here: the recorder writes them from
// the deliverers' events, a moment behind.

func (s *Server) getDelivery(c echo.Context) error {
	return getOne(c, "delivery", s.app.Delivery, deliveryOut)
}

func (s *Server) listDeliveries(c echo.Context) error {
	q := c.QueryParams()
	p, aerr := parseList(q)
	if aerr != nil {
		return aerr
	}
	var f record.DeliveryFilter
	for _, filter := range []struct {
		name string
		dst  **string
	}{{"topic_id", &f.TopicID}, {"subscription_id", &f.SubscriptionID}, {"message_id", &f.MessageID}} {
		if *filter.dst, aerr = idFilter(q, filter.name); aerr != nil {
			return aerr
		}
	}
	if st := q.Get("status"); st != "" {
		f.Status = &st
	}
	rows, err := s.app.ListDeliveries(c.Request().Context(), f, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string][]Delivery{"deliveries": store.Map(rows, deliveryOut)})
}

func (s *Server) getAttempt(c echo.Context) error {
	return getOne(c, "delivery_attempt", s.app.Attempt, attemptOut)
}

func (s *Server) listAttempts(c echo.Context) error {
	q := c.QueryParams()
	p, aerr := parseList(q)
	if aerr != nil {
		return aerr
	}
	deliveryID, aerr := idFilter(q, "delivery_id")
	if aerr != nil {
		return aerr
	}
	rows, err := s.app.ListAttempts(c.Request().Context(), record.AttemptFilter{DeliveryID: deliveryID}, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string][]DeliveryAttempt{"delivery_attempts": store.Map(rows, attemptOut)})
}
