// Package subscription is hammer's one model of a subscription: the fields
// it has, the defaults a new one gets and the limits every setting must
// keep. The API validates with it, the store returns it, the subscriptions
// bucket holds it and the deliverers read it back, so a limit or a default
// is written once.
package subscription

import "time"

// Subscription is a subscription as it is now. Its JSON is the value of its
// key in the subscriptions bucket, which deliverers of every version read:
// fields may be added, never renamed.
type Subscription struct {
	ID            string `json:"id"`
	TopicID       string `json:"topic_id"`
	Name          string `json:"name"`
	URL           string `json:"url"`
	SecretToken   string `json:"secret_token"`
	SigningSecret string `json:"signing_secret"`
	// The limits of its deliveries (DESIGN "Retries"), in the units the
	// API takes: attempts, seconds, requests.
	MaxDeliveryAttempts    int       `json:"max_delivery_attempts"`
	DeliveryAttemptDelay   int       `json:"delivery_attempt_delay"`
	DeliveryAttemptTimeout int       `json:"delivery_attempt_timeout"`
	MaxConcurrentRequests  int       `json:"max_concurrent_requests"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
}

// Limit is the range a setting may take and the value it gets when omitted.
type Limit struct {
	Field         string // as the API names it
	Min, Max, Def int
}

// The limits of every setting. The floor is DESIGN's (0 and negatives are
// refused); the ceilings keep one subscription from holding a delivery for
// days or a deliverer's workers for minutes.
var (
	MaxDeliveryAttempts    = Limit{Field: "max_delivery_attempts", Min: 1, Max: 100, Def: 5}
	DeliveryAttemptDelay   = Limit{Field: "delivery_attempt_delay", Min: 1, Max: 86_400, Def: 60}
	DeliveryAttemptTimeout = Limit{Field: "delivery_attempt_timeout", Min: 1, Max: 300, Def: 5}
	MaxConcurrentRequests  = Limit{Field: "max_concurrent_requests", Min: 1, Max: 1_000, Def: 8}
)

// Allows reports whether v is within l.
func (l Limit) Allows(v int) bool { return v >= l.Min && v <= l.Max }

// WithDefaults is s with every limit it lacks (zero) set to its default:
// what a subscription created without them gets.
func (s Subscription) WithDefaults() Subscription {
	for _, f := range []struct {
		v *int
		l Limit
	}{
		{&s.MaxDeliveryAttempts, MaxDeliveryAttempts},
		{&s.DeliveryAttemptDelay, DeliveryAttemptDelay},
		{&s.DeliveryAttemptTimeout, DeliveryAttemptTimeout},
		{&s.MaxConcurrentRequests, MaxConcurrentRequests},
	} {
		if *f.v == 0 {
			*f.v = f.l.Def
		}
	}
	return s
}

// Patch names the fields a create sets or a PATCH changes; nil leaves a
// field as it is (or, on create, to its default).
type Patch struct {
	TopicID                *string
	Name                   *string
	URL                    *string
	SecretToken            *string
	SigningSecret          *string
	MaxDeliveryAttempts    *int
	DeliveryAttemptDelay   *int
	DeliveryAttemptTimeout *int
	MaxConcurrentRequests  *int
}

// Empty reports whether p changes nothing.
func (p Patch) Empty() bool {
	return p == Patch{}
}

// Apply copies the fields p names onto s.
func (p Patch) Apply(s *Subscription) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.TopicID, p.TopicID)
	set(&s.Name, p.Name)
	set(&s.URL, p.URL)
	set(&s.SecretToken, p.SecretToken)
	set(&s.SigningSecret, p.SigningSecret)
	setInt(&s.MaxDeliveryAttempts, p.MaxDeliveryAttempts)
	setInt(&s.DeliveryAttemptDelay, p.DeliveryAttemptDelay)
	setInt(&s.DeliveryAttemptTimeout, p.DeliveryAttemptTimeout)
	setInt(&s.MaxConcurrentRequests, p.MaxConcurrentRequests)
}

// Limits pairs each setting p may name with its limit, in the order the API
// checks them.
func (p Patch) Limits() []struct {
	Limit Limit
	Value *int
} {
	return []struct {
		Limit Limit
		Value *int
	}{
		{MaxDeliveryAttempts, p.MaxDeliveryAttempts},
		{DeliveryAttemptDelay, p.DeliveryAttemptDelay},
		{DeliveryAttemptTimeout, p.DeliveryAttemptTimeout},
		{MaxConcurrentRequests, p.MaxConcurrentRequests},
	}
}
