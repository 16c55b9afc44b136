package signing

import (
	"net/http"
	"testing"
	"time"

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
