package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/platform/tracing"
	"github.com/hammer-webhooks/hammer/services/api/app"
)

// Publishing (DESIGN "The path of a message"): a message is accepted when
// JetStream has acknowledged it, and the answer waits for that. The rules
// are the application's; this is their REST door.

const (
	defaultContentType = app.DefaultContentType
	maxBatchItems      = app.MaxBatchItems
	headerIdempotency  = "Idempotency-Key"
)

// messageFields is the body of one message.
type messageFields struct {
	TopicID     *string         `json:"topic_id"`
	Data        json.RawMessage `json:"data"`
	ContentType *string         `json:"content_type"`
}

// input is f as the application takes it; the data is read from its JSON
// only when the application reaches it.
func (f *messageFields) input() app.MessageInput {
	in := app.MessageInput{TopicID: f.TopicID, ContentType: f.ContentType}
	if f.Data != nil {
		in.Data = jsonData(f.Data)
	}
	return in
}

type messageRequest struct {
	Message *messageFields `json:"message"`
}

// batchItem is one message of a batch, which carries its own idempotency key.
type batchItem struct {
	messageFields
	IdempotencyKey *string `json:"idempotency_key"`
}

type batchRequest struct {
	Messages []json.RawMessage `json:"messages"`
}

// draft is a checked message, not yet accepted.
type draft = app.Draft

// decodeMessageInput reads {"message": {...}}. body is one valid JSON value,
// as readJSON returns it.
func decodeMessageInput(body []byte) (app.MessageInput, *apiError) {
	var req messageRequest
	if err := decodeValid(body, &req); err != nil {
		return app.MessageInput{}, err
	}
	if req.Message == nil {
		return app.MessageInput{}, invalid("message", `the body must be {"message": {...}}`)
	}
	return req.Message.input(), nil
}

// decodeMessage reads {"message": {...}} and checks it.
func decodeMessage(body []byte, maxBytes int) (draft, *apiError) {
	in, err := decodeMessageInput(body)
	if err != nil {
		return draft{}, err
	}
	d, aerr := app.CheckMessage(in, maxBytes)
	return d, fromApp(aerr)
}

// jsonBatch is a batch body's items, decoded one at a time as the
// application checks them.
type jsonBatch []json.RawMessage

func (b jsonBatch) Len() int { return len(b) }

func (b jsonBatch) Item(i int) (app.MessageInput, *app.Error) {
	var item batchItem
	if err := decodeValid(b[i], &item); err != nil { // b[i] is part of the valid body
		if err.body.Code == "invalid_json" {
			return app.MessageInput{}, app.InvalidField("message", "each message must be a JSON object")
		}
		return app.MessageInput{}, app.Errorf(app.Invalid, err.body.Code, "%s", err.body.Message)
	}
	in := item.input()
	in.IdempotencyKey = item.IdempotencyKey
	return in, nil
}

// decodeBatchItems reads {"messages": [...]}. body is one valid JSON value,
// as readJSON returns it.
func decodeBatchItems(body []byte) (jsonBatch, *apiError) {
	var req batchRequest
	if err := decodeValid(body, &req); err != nil {
		return nil, err
	}
	return req.Messages, nil
}

// decodeBatch reads {"messages": [...]} and checks every item; the first bad
// item fails the whole batch.
func decodeBatch(body []byte, maxBytes int) ([]draft, *apiError) {
	items, err := decodeBatchItems(body)
	if err != nil {
		return nil, err
	}
	drafts, aerr := app.CheckBatch(items, maxBytes)
	return drafts, fromApp(aerr)
}

// jsonData is a message's data as REST sends it: a JSON string's contents,
// or an object or array as the JSON text that was sent.
type jsonData json.RawMessage

func (raw jsonData) Bytes() ([]byte, *app.Error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return nil, app.InvalidField("data", "data is required")
	}
	switch b[0] {
	case '"':
		var s string
		if err := unquote(b, &s); err != nil {
			return nil, app.InvalidField("data", "data is not a valid JSON string")
		}
		return []byte(s), nil
	case '{', '[':
		return bytes.Clone(b), nil
	}
	return nil, app.InvalidField("data", "data must be a string, or a JSON object or array")
}

// messageBodyLimit is the largest single-message body: data escaped at worst
// six bytes per byte, plus the other fields.
func (s *Server) messageBodyLimit() int64 {
	return int64(s.cfg.MaxMessageBytes)*6 + bodyOverhead
}

func (s *Server) publishMessage(c echo.Context) error {
	var body json.RawMessage
	if err := readJSON(c, s.messageBodyLimit(), &body); err != nil {
		return err
	}
	in, aerr := decodeMessageInput(body)
	if aerr != nil {
		return aerr
	}
	if values := c.Request().Header.Values(headerIdempotency); len(values) > 0 {
		in.IdempotencyKey = &values[0]
	}
	ctx, span := tracing.StartServer(c.Request(), "POST /v1/messages")
	defer span.End()
	m, err := s.app.Publish(ctx, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, publishedOut(m))
}

func (s *Server) publishBatch(c echo.Context) error {
	var body json.RawMessage
	if err := readJSON(c, batchBodyLimit, &body); err != nil {
		return err
	}
	items, aerr := decodeBatchItems(body)
	if aerr != nil {
		return aerr
	}
	ctx, span := tracing.StartServer(c.Request(), "POST /v1/messages:batch")
	defer span.End()
	msgs, err := s.app.PublishBatch(ctx, items)
	if err != nil {
		return err
	}
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = publishedOut(m)
	}
	return c.JSON(http.StatusOK, map[string][]Message{"messages": out})
}
