package migrations_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hammer-webhooks/hammer/sql/migrations"
)

// freshDatabase creates an empty database (not cloned from the migrated
// template) so the migrations themselves are exercised.
func freshDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("HAMMER_TEST_DATABASE_URL")
	if base == "" {
		t.Fatal("HAMMER_TEST_DATABASE_URL is not set: run the tests with make test")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("migrations_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			defer c.Close(context.Background())
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func tables(t *testing.T, dbURL string) []string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestUpDownUp(t *testing.T) {
	t.Parallel()
	dbURL := freshDatabase(t)
	want := "deleted_messages,deliveries,delivery_attempts,messages,subscriptions,topics"

	v, dirty, err := migrations.Version(dbURL)
	if err != nil || v != 0 || dirty {
		t.Fatalf("before: version %d dirty %v err %v, want 0 false nil", v, dirty, err)
	}
	if err := migrations.Up(dbURL); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tables(t, dbURL), ","); got != want {
		t.Fatalf("after up: tables %s, want %s", got, want)
	}
	if err := migrations.Up(dbURL); err != nil {
		t.Fatalf("second up must be a no-op: %v", err)
	}
	if err := migrations.Down(dbURL); err != nil {
		t.Fatal(err)
	}
	if got := tables(t, dbURL); len(got) != 0 {
		t.Fatalf("after down: tables %v remain", got)
	}
	if err := migrations.Up(dbURL); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tables(t, dbURL), ","); got != want {
		t.Fatalf("after up again: tables %s, want %s", got, want)
	}
	v, dirty, err = migrations.Version(dbURL)
	if err != nil || v == 0 || dirty {
		t.Fatalf("after: version %d dirty %v err %v", v, dirty, err)
	}
}

func TestRejectsOtherSchemes(t *testing.T) {
	t.Parallel()
	err := migrations.Up("mysql://localhost/db")
	if err == nil || !strings.Contains(err.Error(), "want postgres://") {
		t.Fatalf("err = %v, want a scheme error", err)
	}
}
