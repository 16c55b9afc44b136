package signing

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

// The test vector published with the Standard Webhooks specification.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	key, err := ParseSecret(vectorSecret)
	require.NoError(t, err)
	require.Equal(t, vectorSignature, Sign(key, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody)))

	h := http.Header{}
	require.NoError(t, SetHeaders(h, vectorSecret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody)))
	require.Equal(t, []string{vectorID}, h["webhook-id"])
	require.Equal(t, []string{"1614265330"}, h["webhook-timestamp"])
	require.Equal(t, []string{vectorSignature}, h["webhook-signature"])
}

func TestVerify(t *testing.T) {
	t.Parallel()
	at := time.Unix(vectorTimestamp, 0)
	signed := func() http.Header {
		h := http.Header{}
		require.NoError(t, SetHeaders(h, vectorSecret, vectorID, at, []byte(vectorBody)))
		return h
	}

	require.NoError(t, Verify(vectorSecret, signed(), []byte(vectorBody), at.Add(time.Minute), DefaultTolerance))

	// Several signatures (a receiver rotating secrets): one match is enough.
	h := signed()
	h["webhook-signature"] = []string{"v1,bm9wZQ== v2,whatever " + vectorSignature}
	require.NoError(t, Verify(vectorSecret, h, []byte(vectorBody), at, DefaultTolerance))

	// Canonical header names, as net/http delivers them to a server.
	canonical := http.Header{}
	for k, v := range signed() {
		canonical[http.CanonicalHeaderKey(k)] = v
	}
	require.NoError(t, Verify(vectorSecret, canonical, []byte(vectorBody), at, DefaultTolerance))

	require.ErrorIs(t, Verify(vectorSecret, signed(), []byte(`{"test": 1}`), at, DefaultTolerance), ErrNoMatch)
	require.ErrorIs(t, Verify("whsec_"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", signed(), []byte(vectorBody), at, DefaultTolerance), ErrNoMatch)
	require.ErrorContains(t, Verify(vectorSecret, signed(), []byte(vectorBody), at.Add(10*time.Minute), DefaultTolerance), "away from now")
	require.ErrorContains(t, Verify(vectorSecret, http.Header{}, []byte(vectorBody), at, DefaultTolerance), "missing")
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	withPrefix, err := ParseSecret(vectorSecret)
	require.NoError(t, err)
	without, err := ParseSecret(vectorSecret[len(SecretPrefix):])
	require.NoError(t, err)
	require.Equal(t, withPrefix, without)

	_, err = ParseSecret("whsec_not base64!")
	require.Error(t, err)
	_, err = ParseSecret("whsec_")
	require.Error(t, err)
}

// During a rotation a request carries one signature per secret; a receiver
// holding either verifies it with a Standard Webhooks library.
func TestRotationSignsWithEverySecret(t *testing.T) {
	t.Parallel()
	newSecret := SecretPrefix + base64.StdEncoding.EncodeToString([]byte("the new key, thirty-two bytes ok"))
	oldSecret := SecretPrefix + base64.StdEncoding.EncodeToString([]byte("the old key, thirty-two bytes ok"))
	other := SecretPrefix + base64.StdEncoding.EncodeToString([]byte("a key nobody signed with, at all"))
	body := []byte(`{"topic_id":"person"}`)
	h := http.Header{}
	require.NoError(t, SetHeaders(h, newSecret, "01JP9ZMQCN10NSNWA9G6PEWM8D", time.Now(), body, oldSecret))
	sigs := strings.Fields(h[HeaderSignature][0])
	require.Len(t, sigs, 2, "the new secret's signature, then the old one's")

	// As a server reads them: header names canonicalised.
	received := http.Header{}
	for name, values := range h {
		for _, v := range values {
			received.Add(name, v)
		}
	}
	for _, secret := range []string{newSecret, oldSecret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(body, received), "a receiver holding one of the secrets")
	}
	wh, err := standardwebhooks.NewWebhook(other)
	require.NoError(t, err)
	require.Error(t, wh.Verify(body, received), "a secret that signed nothing")

	// Without a rotation there is one signature.
	require.NoError(t, SetHeaders(h, newSecret, "01JP9ZMQCN10NSNWA9G6PEWM8D", time.Now(), body))
	require.Len(t, strings.Fields(h[HeaderSignature][0]), 1)
	require.Error(t, SetHeaders(h, newSecret, "id", time.Now(), body, "whsec_not base64!"), "a bad previous secret")
}
