package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/subscription"
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
	creating := pathID == ""
	switch {
	case f.ID == nil && creating:
		return nil, invalid("id", "id is required")
	case f.ID != nil && !creating && *f.ID != pathID:
		return nil, invalid("id", "id %q differs from the path's %q; an id cannot be changed", *f.ID, pathID)
	case f.ID != nil:
		if err := checkID("id", *f.ID); err != nil {
			return nil, err
		}
	}
	required := []struct {
		name  string
		value *string
	}{{"topic_id", f.TopicID}, {"name", f.Name}, {"url", f.URL}}
	for _, r := range required {
		if r.value == nil && creating {
			return nil, invalid(r.name, "%s is required", r.name)
		}
	}
	if f.TopicID != nil {
		if err := checkID("topic_id", *f.TopicID); err != nil {
			return nil, err
		}
	}
	if f.Name != nil {
		if err := checkText("name", *f.Name, maxNameBytes); err != nil {
			return nil, err
		}
	}
	if f.URL != nil {
		if err := checkURL(*f.URL); err != nil {
			return nil, err
		}
	}
	if f.SecretToken != nil {
		if err := checkText("secret_token", *f.SecretToken, maxSecretBytes); err != nil {
			return nil, err
		}
	}
	if f.SigningSecret != nil {
		if err := checkSigningSecret(*f.SigningSecret); err != nil {
			return nil, err
		}
	}
	for _, l := range []struct {
		name  string
		value *int
	}{
		{"max_delivery_attempts", f.MaxDeliveryAttempts},
		{"delivery_attempt_delay", f.DeliveryAttemptDelay},
		{"delivery_attempt_timeout", f.DeliveryAttemptTimeout},
		{"max_concurrent_requests", f.MaxConcurrentRequests},
	} {
		if l.value != nil {
			if err := checkLimit(l.name, *l.value); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// patch is what the body names, as the store applies it.
func (f *subscriptionFields) patch() subscription.Patch {
	return subscription.Patch{
		TopicID: f.TopicID, Name: f.Name, URL: f.URL,
		SecretToken: f.SecretToken, SigningSecret: f.SigningSecret,
		MaxDeliveryAttempts:    f.MaxDeliveryAttempts,
		DeliveryAttemptDelay:   f.DeliveryAttemptDelay,
		DeliveryAttemptTimeout: f.DeliveryAttemptTimeout,
		MaxConcurrentRequests:  f.MaxConcurrentRequests,
	}
}

func orDefault(v *int, field string) int {
	if v != nil {
		return *v
	}
	return limits[field].def
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
	p := subscription.Subscription{
		ID: *f.ID, TopicID: *f.TopicID, Name: *f.Name, URL: *f.URL,
		MaxDeliveryAttempts:    orDefault(f.MaxDeliveryAttempts, "max_delivery_attempts"),
		DeliveryAttemptDelay:   orDefault(f.DeliveryAttemptDelay, "delivery_attempt_delay"),
		DeliveryAttemptTimeout: orDefault(f.DeliveryAttemptTimeout, "delivery_attempt_timeout"),
		MaxConcurrentRequests:  orDefault(f.MaxConcurrentRequests, "max_concurrent_requests"),
		CreatedAt:              now(),
	}
	if f.SecretToken != nil {
		p.SecretToken = *f.SecretToken
	} else {
		p.SecretToken = newSecretToken()
	}
	if f.SigningSecret != nil {
		p.SigningSecret = *f.SigningSecret
	} else {
		p.SigningSecret = newSigningSecret()
	}
	ctx := c.Request().Context()
	sub, err := s.catalog.CreateSubscription(ctx, p)
	if err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return alreadyExists("subscription")
		case errors.Is(err, store.ErrParentMissing):
			return unknownTopic(p.TopicID)
		}
		return storeError(err)
	}
	s.view.changed(ctx, events.KindSubscriptionCreated, sub)
	return c.JSON(http.StatusOK, subscriptionOut(sub))
}

func (s *Server) getSubscription(c echo.Context) error {
	return getOne(c, "subscription", s.catalog.Subscription, subscriptionOut)
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
	rows, err := s.catalog.ListSubscriptions(c.Request().Context(), catalog.SubscriptionFilter{TopicID: topicID}, p)
	if err != nil {
		return storeError(err)
	}
	return c.JSON(http.StatusOK, map[string][]Subscription{"subscriptions": store.Map(rows, subscriptionOut)})
}

// patchSubscription changes only the fields the body names, under a row lock
// so concurrent PATCHes of different fields both take effect.
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
	ctx := c.Request().Context()
	patch := f.patch()
	sub, err := s.catalog.UpdateSubscription(ctx, id, patch, now())
	if err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return notFound("subscription")
		case errors.Is(err, store.ErrParentMissing):
			return unknownTopic(*f.TopicID)
		}
		return storeError(err)
	}
	if !patch.Empty() {
		s.view.changed(ctx, events.KindSubscriptionUpdated, sub)
	}
	return c.JSON(http.StatusOK, subscriptionOut(sub))
}

func (s *Server) deleteSubscription(c echo.Context) error {
	id, ok := pathID(c)
	if !ok {
		return notFound("subscription")
	}
	ctx := c.Request().Context()
	sub, err := s.catalog.DeleteSubscription(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("subscription")
		}
		return storeError(err)
	}
	s.view.deleted(ctx, sub)
	return c.NoContent(http.StatusNoContent)
}
