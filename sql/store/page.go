package store

import (
	"context"
	"time"
)

// Page is what every list takes: a window of rows in creation order.
type Page struct {
	Limit, Offset int32
	// Asc lists oldest first; the default is newest first.
	Asc bool
	// Bounds on created_at; nil for none.
	CreatedAtGt, CreatedAtGte *time.Time
	CreatedAtLt, CreatedAtLte *time.Time
}

// Ordered runs a list in p's order. Each list has one query per order, so
// that both walk the same (created_at, id) index forwards or backwards;
// sqlc gives the two queries parameter and row types of one shape, so byDesc
// is byAsc's twin behind a conversion.
func Ordered[A, R any](ctx context.Context, p Page, args A,
	byAsc, byDesc func(context.Context, A) ([]R, error)) ([]R, error) {
	run := byDesc
	if p.Asc {
		run = byAsc
	}
	rows, err := run(ctx, args)
	return rows, Interpret(err)
}

// Map converts rows to domain values.
func Map[R, T any](rows []R, f func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}
