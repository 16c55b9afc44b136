package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// Validate checks that the NATS settings name one way to authenticate and
// files that can be read.
func (a NATSAuth) Validate() error {
	var errs []error
	var ways []string
	for _, w := range []struct{ name, value string }{
		{"HAMMER_NATS_CREDS", a.NATSCreds}, {"HAMMER_NATS_NKEY_SEED", a.NATSNKeySeed},
		{"HAMMER_NATS_USER", a.NATSUser}, {"HAMMER_NATS_TOKEN", a.NATSToken},
	} {
		if w.value != "" {
			ways = append(ways, w.name)
		}
	}
	if len(ways) > 1 {
		errs = append(errs, fmt.Errorf("%v are all set: set only one way to authenticate to NATS", ways))
	}
	if (a.NATSUser == "") != (a.NATSPassword == "") {
		errs = append(errs, errors.New("HAMMER_NATS_USER and HAMMER_NATS_PASSWORD go together: set both or neither"))
	}
	if (a.NATSTLSCert == "") != (a.NATSTLSKey == "") {
		errs = append(errs, errors.New("HAMMER_NATS_TLS_CERT and HAMMER_NATS_TLS_KEY go together: set both or neither"))
	}
	for _, f := range []struct{ name, path string }{
		{"HAMMER_NATS_CREDS", a.NATSCreds}, {"HAMMER_NATS_NKEY_SEED", a.NATSNKeySeed},
		{"HAMMER_NATS_TLS_CA", a.NATSTLSCA}, {"HAMMER_NATS_TLS_CERT", a.NATSTLSCert}, {"HAMMER_NATS_TLS_KEY", a.NATSTLSKey},
	} {
		if f.path == "" {
			continue
		}
		if fh, err := os.Open(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: cannot read it: %v", f.name, f.path, errors.Unwrap(err)))
		} else {
			fh.Close()
		}
	}
	return errors.Join(errs...)
}

// NATSOptions are the nats.go options that apply these settings; every
// connection hammer makes to NATS uses them.
func (a NATSAuth) NATSOptions() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(a.NATSCreds))
	case a.NATSNKeySeed != "":
		o, err := nats.NkeyOptionFromSeed(a.NATSNKeySeed)
		if err != nil {
			return nil, fmt.Errorf("HAMMER_NATS_NKEY_SEED=%s: %w", a.NATSNKeySeed, err)
		}
		opts = append(opts, o)
	case a.NATSUser != "":
		opts = append(opts, nats.UserInfo(a.NATSUser, a.NATSPassword))
	case a.NATSToken != "":
		opts = append(opts, nats.Token(a.NATSToken))
	}
	if a.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(a.NATSTLSCA))
	}
	if a.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(a.NATSTLSCert, a.NATSTLSKey))
	}
	return opts, nil
}

// Redact hides the password of a URL (a database or NATS URL, or a
// comma-separated list of them), so that logs and errors never carry it.
func Redact(raw string) string { return redactList(raw) }
