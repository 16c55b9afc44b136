// Package store is the only door to PostgreSQL. Its packages, one per
// database role (catalog: topics and subscriptions; record: messages,
// deliveries and attempts), run sqlc's queries through pgx and return
// domain types and the errors below; nothing above them sees pgx, pgconn or
// dbsqlc. This package holds what they share: the errors, the translation
// of driver errors into them, transactions and batches, and paging.
package store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound: no row has that key.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a row with that key exists already.
	ErrConflict = errors.New("already exists")
	// ErrParentMissing: a row names a parent (a topic, say) that does not exist.
	ErrParentMissing = errors.New("parent does not exist")
	// ErrUnavailable: the database cannot serve now; try again later.
	ErrUnavailable = errors.New("database unavailable")
	// ErrRefused: the rows themselves break a rule of the schema (a data
	// exception or a violated constraint); writing them again repeats it.
	ErrRefused = errors.New("refused for its content")
)

// Interpret maps a pgx error to ErrNotFound, ErrConflict, ErrParentMissing
// or ErrUnavailable (wrapping the original), or returns it unchanged.
func Interpret(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrConflict, pgErr.ConstraintName)
		case "23503":
			return fmt.Errorf("%w: %s", ErrParentMissing, pgErr.ConstraintName)
		case "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006":
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connectErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// InterpretWrite is Interpret for a write whose rows may be refused: an
// error of SQLSTATE class 22 (data exception) or 23 (integrity constraint
// violation) is ErrRefused, since retrying the same rows would only repeat
// it.
func InterpretWrite(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) >= 2 {
		if class := pgErr.Code[:2]; class == "22" || class == "23" {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	return Interpret(err)
}

// txAttempts is how often a transaction Postgres aborted for a deadlock or
// a serialization failure is run.
const txAttempts = 3

// InTx runs fn in a transaction, commits when fn returns nil and rolls back
// otherwise; the rollback runs even when ctx is already cancelled. A
// transaction Postgres aborts for a deadlock or a serialization failure is
// run again: two requests changing the same rows in opposite orders is
// nobody's fault and passes on retry. If it keeps failing, the error is
// ErrUnavailable. Errors fn returns are passed through Interpret.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := inTx(ctx, pool, fn)
		if !transient(err) {
			return Interpret(err)
		}
		if attempt == txAttempts {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
}

func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func transient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}
