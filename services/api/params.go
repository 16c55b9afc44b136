package api

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/services/api/app"
	"github.com/hammer-webhooks/hammer/sql/store"
)

// List paging (DESIGN "The REST API").
const (
	defaultLimit = app.DefaultLimit
	maxLimit     = app.MaxLimit
)

// parseList reads limit, offset, order and created_at_* from the query.
// Parameters it does not know are left to the caller (filters) or ignored.
func parseList(q url.Values) (store.Page, *apiError) {
	p := store.Page{Limit: defaultLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, invalid("limit", "limit must be a positive integer (at most %d is used)", maxLimit)
		}
		p.Limit = int32(min(n, maxLimit))
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > math.MaxInt32 {
			return p, invalid("offset", "offset must be an integer from 0 to %d", math.MaxInt32)
		}
		p.Offset = int32(n)
	}
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		p.Asc = true
	default:
		return p, invalid("order", "order must be asc or desc")
	}
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"created_at_gt", &p.CreatedAtGt}, {"created_at_gte", &p.CreatedAtGte}, {"created_at_lt", &p.CreatedAtLt}, {"created_at_lte", &p.CreatedAtLte}} {
		s := q.Get(f.name)
		if s == "" {
			continue
		}
		t, ok := parseQueryTime(s)
		if !ok {
			return p, invalid(f.name, "%s must be an RFC 3339 time such as 2020-05-12T18:51:45Z", f.name)
		}
		*f.dst = &t
	}
	return p, nil
}

// parseQueryTime reads an RFC 3339 time. An unencoded '+' of a zone offset
// arrives as a space, so a space is read as '+'.
func parseQueryTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// idFilter reads an optional ID filter from the query.
func idFilter(q url.Values, name string) (*string, *apiError) {
	s := q.Get(name)
	if s == "" {
		return nil, nil
	}
	if err := app.CheckID(name, s); err != nil {
		return nil, fromApp(err)
	}
	return &s, nil
}

// validID reports whether s can be an ID; path parameters that cannot be
// never reach the application.
func validID(s string) bool { return app.ValidID(s) }

// pathID reads the path's id, unescaped. ok is false when it cannot be an ID
// (no such resource can exist, so the caller answers 404 without a query).
func pathID(c echo.Context) (string, bool) {
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil || !validID(id) {
		return "", false
	}
	return id, true
}
