package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/platform/database"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
)

// Deliveries and attempts are read-only here: the recorder writes them from
// the deliverers' events, a moment behind.

func (s *Server) getDelivery(c echo.Context) error {
	return getOne(c, "delivery", s.q.DeliveryGetByID, deliveryOut)
}

func (s *Server) listDeliveries(c echo.Context) error {
	q := c.QueryParams()
	p, aerr := parseList(q)
	if aerr != nil {
		return aerr
	}
	var f struct{ topicID, subscriptionID, messageID, status *string }
	for _, filter := range []struct {
		name string
		dst  **string
	}{{"topic_id", &f.topicID}, {"subscription_id", &f.subscriptionID}, {"message_id", &f.messageID}} {
		if *filter.dst, aerr = idFilter(q, filter.name); aerr != nil {
			return aerr
		}
	}
	switch st := q.Get("status"); st {
	case "":
	case events.StatusPending, events.StatusCompleted, events.StatusFailed:
		f.status = &st
	default:
		return invalid("status", "status must be pending, completed or failed")
	}
	ctx := c.Request().Context()
	var out []Delivery
	if p.asc {
		rows, err := s.q.DeliveryListAsc(ctx, dbsqlc.DeliveryListAscParams{
			TopicID: f.topicID, SubscriptionID: f.subscriptionID, MessageID: f.messageID, Status: f.status,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
		if err != nil {
			return storeError(database.Interpret(err))
		}
		out = make([]Delivery, len(rows))
		for i, d := range rows {
			out[i] = deliveryOut(deliveryRow(d))
		}
	} else {
		rows, err := s.q.DeliveryListDesc(ctx, dbsqlc.DeliveryListDescParams{
			TopicID: f.topicID, SubscriptionID: f.subscriptionID, MessageID: f.messageID, Status: f.status,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
		if err != nil {
			return storeError(database.Interpret(err))
		}
		out = make([]Delivery, len(rows))
		for i, d := range rows {
			out[i] = deliveryOut(deliveryRow(d))
		}
	}
	return c.JSON(http.StatusOK, map[string][]Delivery{"deliveries": out})
}

func (s *Server) getAttempt(c echo.Context) error {
	return getOne(c, "delivery_attempt", s.q.AttemptGetByID, attemptOut)
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
	ctx := c.Request().Context()
	var rows []dbsqlc.DeliveryAttempt
	var err error
	if p.asc {
		rows, err = s.q.AttemptListAsc(ctx, dbsqlc.AttemptListAscParams{DeliveryID: deliveryID,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	} else {
		rows, err = s.q.AttemptListDesc(ctx, dbsqlc.AttemptListDescParams{DeliveryID: deliveryID,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	}
	if err != nil {
		return storeError(database.Interpret(err))
	}
	out := make([]DeliveryAttempt, len(rows))
	for i, a := range rows {
		out[i] = attemptOut(a)
	}
	return c.JSON(http.StatusOK, map[string][]DeliveryAttempt{"delivery_attempts": out})
}
