package pgrun

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// PasswordFile, in the cluster's directory, holds the superuser's password
// (mode 0600, hammer's own user). Every connection, on loopback or the unix
// socket, needs it: no other local user gets in.
const PasswordFile = "password"

// hbaConf is the authentication hammer's cluster uses. hammer writes it
// whole, so that a cluster made by an earlier hammer with trust
// authentication is converted in place.
const hbaConf = `# Written by hammer dev: every connection needs the superuser's generated
# password (the file "password" beside the cluster's data directory).
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128 scram-sha-256
`

// password returns the cluster's password, making one when there is none
// yet and the cluster can take it: a new cluster, or one an earlier hammer
// made with trust authentication.
func password(dir string, fresh bool) (string, error) {
	path := filepath.Join(dir, PasswordFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if info, serr := os.Stat(path); serr == nil && info.Mode().Perm() != 0o600 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("making %s private: %w", path, err)
			}
		}
		if pw := strings.TrimSpace(string(b)); pw != "" {
			return pw, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading PostgreSQL's password %s: %w", path, err)
	}
	if !fresh && !trusting(filepath.Join(dir, "data")) {
		return "", fmt.Errorf("the password of hammer dev's PostgreSQL (%s) is missing, and without it nobody can log in: restore it, or remove %s to start with an empty cluster", path, filepath.Join(dir, "data"))
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing PostgreSQL's password %s: %w", path, err)
	}
	return pw, nil
}

// trusting reports whether the cluster's pg_hba.conf lets anyone in without
// a password, as clusters made by hammer before it generated passwords do.
func trusting(pgdata string) bool {
	f, err := os.Open(filepath.Join(pgdata, "pg_hba.conf"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, field := range strings.Fields(line) {
			if field == "trust" {
				return true
			}
		}
	}
	return false
}

// convert gives a trusting cluster's superuser the password and turns
// password authentication on for every connection.
func convert(ctx context.Context, log *zap.Logger, pgdata string, port int, pw string) error {
	log.Info("converting PostgreSQL from trust to password authentication (a cluster of an earlier hammer)", zap.String("dir", pgdata))
	conn, err := pgx.Connect(ctx, databaseURL(port, "postgres", pw))
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL to set its password: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The password is hex, so quoting it is safe; ALTER ROLE takes no
	// parameters.
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'; ALTER ROLE "+pgx.Identifier{superuser}.Sanitize()+" PASSWORD '"+pw+"'"); err != nil {
		return fmt.Errorf("setting PostgreSQL's password: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pgdata, "pg_hba.conf"), []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(pgdata, "pg_hba.conf"), err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reloading PostgreSQL's configuration: %w", err)
	}
	return nil
}
