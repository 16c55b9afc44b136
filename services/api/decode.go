package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"
)

// Body limits. A message's data may be sent as a JSON string in which every
// byte is escaped (\u0000 is six bytes), so a message body may be up to six
// times its data, plus room for the other fields.
const (
	resourceBodyLimit = 64 << 10
	batchBodyLimit    = 8 << 20
	bodyOverhead      = 64 << 10
)

// readJSON reads c's body, at most limit bytes, and decodes it into dst
// strictly: the media type must not be clearly something else, every field
// must be known and of the right type, and nothing may follow the value.
func readJSON(c echo.Context, limit int64, dst any) *apiError {
	r := c.Request()
	if err := checkMediaType(r.Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	if r.ContentLength > limit {
		return tooLarge("the request body is %d bytes; the limit is %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge("the request body is larger than %d bytes", limit)
		}
		return newError(http.StatusBadRequest, "invalid_json", "reading the request body: %v", err)
	}
	return decodeStrict(body, dst)
}

// checkMediaType refuses a body whose Content-Type is clearly not JSON. No
// Content-Type, curl's default form type and text/plain are read as JSON, so
// the seed's curl and httpie examples keep working.
func checkMediaType(header string) *apiError {
	if header == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "the Content-Type %q cannot be parsed; send application/json", header)
	}
	switch {
	case mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/x-www-form-urlencoded", mt == "text/plain":
		return nil
	}
	return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "the Content-Type %q is not JSON; send application/json", mt)
}

// decodeStrict decodes one JSON value from data into dst, refusing unknown
// fields and anything after the value.
func decodeStrict(data []byte, dst any) *apiError {
	if !json.Valid(data) {
		return decodeStd(data, dst) // refused, in encoding/json's words
	}
	return decodeValid(data, dst)
}

// decodeValid is decodeStrict for data known to be one valid JSON value: a
// body decodeStrict has read, or a part of one. goccy/go-json decodes it,
// several times faster than encoding/json; what goccy refuses is decoded
// again by encoding/json, whose errors the API's messages are made from.
// FuzzFastDecodingAgreesWithEncodingJSON holds both to the same result.
func decodeValid(data []byte, dst any) *apiError {
	if raw, ok := dst.(*json.RawMessage); ok {
		*raw = bytes.Clone(bytes.TrimSpace(data)) // the value's text, as encoding/json keeps it
		return nil
	}
	dec := gojson.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if dec.Decode(dst) == nil {
		return nil
	}
	reflect.ValueOf(dst).Elem().SetZero() // nothing of the failed attempt stays
	return decodeStd(data, dst)
}

// decodeStd is decodeStrict with encoding/json alone.
func decodeStd(data []byte, dst any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newError(http.StatusBadRequest, "invalid_json", "the body holds more than one JSON value")
	}
	return nil
}

// jsonError says what is wrong with a body encoding/json refused, naming the
// field when it can.
func jsonError(err error) *apiError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, "invalid_json", "the body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newError(http.StatusBadRequest, "invalid_json", "the body ends in the middle of a JSON value")
	case errors.As(err, &syntax):
		return newError(http.StatusBadRequest, "invalid_json", "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		path := typ.Field
		if path == "" {
			return newError(http.StatusBadRequest, "invalid_json", "the body must be a JSON object, not %s", typ.Value)
		}
		field := path[strings.LastIndexByte(path, '.')+1:]
		return invalid(field, "%s must be %s, not %s", path, describe(typ.Type), typ.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return newError(http.StatusBadRequest, "unknown_field", "unknown field %s", name)
	}
	return newError(http.StatusBadRequest, "invalid_json", "malformed JSON: %v", err)
}

// describe names a Go type the way a JSON user thinks of it.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// unquote decodes raw, a valid JSON string, into s: with goccy/go-json, or
// with encoding/json should goccy refuse it.
func unquote(raw []byte, s *string) error {
	if gojson.Unmarshal(raw, s) == nil {
		return nil
	}
	*s = ""
	return json.Unmarshal(raw, s)
}
