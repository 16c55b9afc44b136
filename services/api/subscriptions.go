package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/services/api/app"
	"github.com/hammer-webhooks/hammer/sql/store"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
)

// subscriptionFields is the body of a subscription create or PATCH.
// Timestamps are accepted and ignored.
type subscriptionFields struct {
	ID                     *string         `json:"id"`
	TopicID                *string         `json:"topic_id"`
	Name                   *string         `json:"name"`
	URL                    *string         `json:"url"`
	SecretToken            *string         `json:"secret_token"`
	SigningSecret          *string         `json:"signing_secret"`
	MaxDeliveryAttempts    *int            `json:"max_delivery_attempts"`
	DeliveryAttemptDelay   *int            `json:"delivery_attempt_delay"`
	DeliveryAttemptTimeout *int            `json:"delivery_attempt_timeout"`
	MaxConcurrentRequests  *int            `json:"max_concurrent_requests"`
	CreatedAt              json.RawMessage `json:"created_at"`
	UpdatedAt              json.RawMessage `json:"updated_at"`
}

type subscriptionRequest struct {
	Subscription *subscriptionFields `json:"subscription"`
}

func (f *subscriptionFields) input() app.SubscriptionInput {
	return app.SubscriptionInput{ID: f.ID, Patch: subscription.Patch{
		TopicID: f.TopicID, Name: f.Name, URL: f.URL,
		SecretToken: f.SecretToken, SigningSecret: f.SigningSecret,
		MaxDeliveryAttempts:    f.MaxDeliveryAttempts,
		DeliveryAttemptDelay:   f.DeliveryAttemptDelay,
		DeliveryAttemptTimeout: f.DeliveryAttemptTimeout,
		MaxConcurrentRequests:  f.MaxConcurrentRequests,
	}}
}

// decodeSubscription reads and checks a subscription body. On create
// (pathID empty) id, topic_id, name and url are required; on PATCH only the
// named fields are checked.
func decodeSubscription(body []byte, pathID string) (*subscriptionFields, *apiError) {
	var req subscriptionRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	f := req.Subscription
	if f == nil {
		return nil, invalid("subscription", `the body must be {"subscription": {...}}`)
	}
	if err := app.CheckSubscription(f.input(), pathID); err != nil {
		return nil, fromApp(err)
	}
	return f, nil
}

func (s *Server) createSubscription(c echo.Context) error {
	var body json.RawMessage
	if err := readJSON(c, resourceBodyLimit, &body); err != nil {
		return err
	}
	f, aerr := decodeSubscription(body, "")
	if aerr != nil {
		return aerr
	}
	sub, err := s.app.CreateSubscription(c.Request().Context(), f.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, subscriptionOut(sub))
}

func (s *Server) getSubscription(c echo.Context) error {
	return getOne(c, "subscription", s.app.Subscription, subscriptionOut)
}

func (s *Server) listSubscriptions(c echo.Context) error {
	q := c.QueryParams()
	p, aerr := parseList(q)
	if aerr != nil {
		return aerr
	}
	topicID, aerr := idFilter(q, "topic_id")
	if aerr != nil {
		return aerr
	}
	rows, err := s.app.ListSubscriptions(c.Request().Context(), catalog.SubscriptionFilter{TopicID: topicID}, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string][]Subscription{"subscriptions": store.Map(rows, subscriptionOut)})
}

// patchSubscription changes only the fields the body names.
func (s *Server) patchSubscription(c echo.Context) error {
	id, ok := pathID(c)
	var body json.RawMessage
	if err := readJSON(c, resourceBodyLimit, &body); err != nil {
		return err
	}
	if !ok {
		return notFound("subscription")
	}
	f, aerr := decodeSubscription(body, id)
	if aerr != nil {
		return aerr
	}
	sub, err := s.app.UpdateSubscription(c.Request().Context(), id, f.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, subscriptionOut(sub))
}

func (s *Server) deleteSubscription(c echo.Context) error {
	id, ok := pathID(c)
	if !ok {
		return notFound("subscription")
	}
	if err := s.app.DeleteSubscription(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
