package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/platform/database"
	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/sql/dbsqlc"
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

// named reports whether a PATCH body names any field that changes a
// subscription.
func (f *subscriptionFields) named() bool {
	return f.TopicID != nil || f.Name != nil || f.URL != nil || f.SecretToken != nil ||
		f.SigningSecret != nil || f.MaxDeliveryAttempts != nil || f.DeliveryAttemptDelay != nil ||
		f.DeliveryAttemptTimeout != nil || f.MaxConcurrentRequests != nil
}

// apply copies the named fields onto p.
func (f *subscriptionFields) apply(p *dbsqlc.SubscriptionUpdateParams) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setInt := func(dst *int32, v *int) {
		if v != nil {
			*dst = int32(*v)
		}
	}
	set(&p.TopicID, f.TopicID)
	set(&p.Name, f.Name)
	set(&p.Url, f.URL)
	set(&p.SecretToken, f.SecretToken)
	set(&p.SigningSecret, f.SigningSecret)
	setInt(&p.MaxDeliveryAttempts, f.MaxDeliveryAttempts)
	setInt(&p.DeliveryAttemptDelay, f.DeliveryAttemptDelay)
	setInt(&p.DeliveryAttemptTimeout, f.DeliveryAttemptTimeout)
	setInt(&p.MaxConcurrentRequests, f.MaxConcurrentRequests)
}

func orDefault(v *int, field string) int32 {
	if v != nil {
		return int32(*v)
	}
	return int32(limits[field].def)
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
	p := dbsqlc.SubscriptionInsertParams{
		ID: *f.ID, TopicID: *f.TopicID, Name: *f.Name, Url: *f.URL,
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
	sub, err := s.q.SubscriptionInsert(ctx, p)
	if err = database.Interpret(err); err != nil {
		switch {
		case errors.Is(err, database.ErrConflict):
			return alreadyExists("subscription")
		case errors.Is(err, database.ErrParentMissing):
			return unknownTopic(p.TopicID)
		}
		return storeError(err)
	}
	s.view.changed(ctx, events.KindSubscriptionCreated, sub)
	return c.JSON(http.StatusOK, subscriptionOut(sub))
}

func (s *Server) getSubscription(c echo.Context) error {
	return getOne(c, "subscription", s.q.SubscriptionGetByID, subscriptionOut)
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
	ctx := c.Request().Context()
	var rows []dbsqlc.Subscription
	var err error
	if p.asc {
		rows, err = s.q.SubscriptionListAsc(ctx, dbsqlc.SubscriptionListAscParams{TopicID: topicID,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	} else {
		rows, err = s.q.SubscriptionListDesc(ctx, dbsqlc.SubscriptionListDescParams{TopicID: topicID,
			CreatedAtGt: p.gt, CreatedAtGte: p.gte, CreatedAtLt: p.lt, CreatedAtLte: p.lte,
			RowOffset: p.offset, RowLimit: p.limit})
	}
	if err != nil {
		return storeError(database.Interpret(err))
	}
	out := make([]Subscription, len(rows))
	for i, sub := range rows {
		out[i] = subscriptionOut(sub)
	}
	return c.JSON(http.StatusOK, map[string][]Subscription{"subscriptions": out})
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
	var sub dbsqlc.Subscription
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		cur, err := q.SubscriptionGetByIDForUpdate(ctx, id)
		if err != nil {
			return database.Interpret(err)
		}
		if !f.named() {
			sub = cur
			return nil
		}
		p := dbsqlc.SubscriptionUpdateParams{
			ID: cur.ID, TopicID: cur.TopicID, Name: cur.Name, Url: cur.Url,
			SecretToken: cur.SecretToken, SigningSecret: cur.SigningSecret,
			MaxDeliveryAttempts:    cur.MaxDeliveryAttempts,
			DeliveryAttemptDelay:   cur.DeliveryAttemptDelay,
			DeliveryAttemptTimeout: cur.DeliveryAttemptTimeout,
			MaxConcurrentRequests:  cur.MaxConcurrentRequests,
			UpdatedAt:              now(),
		}
		f.apply(&p)
		sub, err = q.SubscriptionUpdate(ctx, p)
		return database.Interpret(err)
	})
	if err != nil {
		switch {
		case errors.Is(err, database.ErrNotFound):
			return notFound("subscription")
		case errors.Is(err, database.ErrParentMissing):
			return unknownTopic(*f.TopicID)
		}
		return storeError(err)
	}
	if f.named() {
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
	sub, err := s.q.SubscriptionDelete(ctx, id)
	if err = database.Interpret(err); err != nil {
		if errors.Is(err, database.ErrNotFound) {
			return notFound("subscription")
		}
		return storeError(err)
	}
	s.view.deleted(ctx, sub)
	return c.NoContent(http.StatusNoContent)
}
