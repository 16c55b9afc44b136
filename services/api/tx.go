package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hammer-webhooks/hammer/platform/database"
)

// txAttempts is how often a transaction Postgres aborted for a deadlock or
// a serialization failure is run.
const txAttempts = 3

// inTx runs fn in a transaction, again when Postgres aborted it for a
// deadlock or a serialization failure: two requests changing the same rows
// in opposite orders is nobody's fault and passes on retry. If it keeps
// failing, the error is ErrUnavailable (503), never a 500.
func (s *Server) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := database.InTx(ctx, s.pool, fn)
		if !transient(err) {
			return err
		}
		if attempt == txAttempts {
			return fmt.Errorf("%w: %w", database.ErrUnavailable, err)
		}
	}
}

func transient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}
