package hammerv1

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The original hammer's interface, as its api/v1/hammer.proto defines it:
// every method with its request and response, every field with its number
// and type. A client generated from that file must keep working, so none of
// this may change; new methods and fields are added beside it.
var original = struct {
	methods []string
	fields  map[string]string
}{
	methods: []string{
		"CreateTopic(CreateTopicRequest) Topic",
		"GetTopic(GetTopicRequest) Topic",
		"ListTopics(ListTopicsRequest) ListTopicsResponse",
		"CreateSubscription(CreateSubscriptionRequest) Subscription",
		"GetSubscription(GetSubscriptionRequest) Subscription",
		"ListSubscriptions(ListSubscriptionsRequest) ListSubscriptionsResponse",
		"CreateMessage(CreateMessageRequest) Message",
		"GetMessage(GetMessageRequest) Message",
		"ListMessages(ListMessagesRequest) ListMessagesResponse",
		"GetDelivery(GetDeliveryRequest) Delivery",
		"ListDeliveries(ListDeliveriesRequest) ListDeliveriesResponse",
		"GetDeliveryAttempt(GetDeliveryAttemptRequest) DeliveryAttempt",
		"ListDeliveryAttempts(ListDeliveryAttemptsRequest) ListDeliveryAttemptsResponse",
	},
	fields: map[string]string{
		"Topic":                        "id=1:string name=2:string created_at=3:Timestamp updated_at=4:Timestamp",
		"GetTopicRequest":              "id=1:string",
		"CreateTopicRequest":           "topic=1:Topic",
		"ListTopicsRequest":            "limit=1:uint32 offset=2:uint32 created_at_gt=3:string created_at_gte=4:string created_at_lt=5:string created_at_lte=6:string",
		"ListTopicsResponse":           "topics=1:[]Topic",
		"Subscription":                 "id=1:string topic_id=2:string name=3:string url=4:string secret_token=5:string max_delivery_attempts=6:uint32 delivery_attempt_delay=7:uint32 delivery_attempt_timeout=8:uint32 created_at=9:Timestamp updated_at=10:Timestamp",
		"GetSubscriptionRequest":       "id=1:string",
		"CreateSubscriptionRequest":    "subscription=1:Subscription",
		"ListSubscriptionsRequest":     "limit=1:uint32 offset=2:uint32 created_at_gt=3:string created_at_gte=4:string created_at_lt=5:string created_at_lte=6:string",
		"ListSubscriptionsResponse":    "subscriptions=1:[]Subscription",
		"Message":                      "id=1:string topic_id=2:string data=3:string created_at=4:Timestamp",
		"GetMessageRequest":            "id=1:string",
		"CreateMessageRequest":         "message=1:Message",
		"ListMessagesRequest":          "limit=1:uint32 offset=2:uint32 topic_id=3:string created_at_gt=4:string created_at_gte=5:string created_at_lt=6:string created_at_lte=7:string",
		"ListMessagesResponse":         "messages=1:[]Message",
		"Delivery":                     "id=1:string topic_id=2:string subscription_id=3:string message_id=4:string data=5:string url=6:string secret_token=7:string max_delivery_attempts=8:uint32 delivery_attempt_delay=9:uint32 delivery_attempt_timeout=10:uint32 scheduled_at=11:Timestamp delivery_attempts=12:uint32 status=13:string created_at=14:Timestamp updated_at=15:Timestamp",
		"GetDeliveryRequest":           "id=1:string",
		"ListDeliveriesRequest":        "limit=1:uint32 offset=2:uint32 topic_id=3:string subscription_id=4:string message_id=5:string status=6:string created_at_gt=7:string created_at_gte=8:string created_at_lt=9:string created_at_lte=10:string",
		"ListDeliveriesResponse":       "deliveries=1:[]Delivery",
		"DeliveryAttempt":              "id=1:string delivery_id=2:string request=3:string response=4:string response_status_code=5:uint32 execution_duration=6:uint32 success=7:bool error=8:string created_at=9:Timestamp",
		"GetDeliveryAttemptRequest":    "id=1:string",
		"ListDeliveryAttemptsRequest":  "limit=1:uint32 offset=2:uint32 delivery_id=3:string created_at_gt=4:string created_at_gte=5:string created_at_lt=6:string created_at_lte=7:string",
		"ListDeliveryAttemptsResponse": "delivery_attempts=1:[]DeliveryAttempt",
	},
}

func TestTheOriginalInterfaceIsKept(t *testing.T) {
	file := File_hammer_v1_hammer_proto
	if got := file.Package(); got != "hammer.v1" {
		t.Fatalf("package %s, want hammer.v1", got)
	}
	svc := file.Services().ByName("Hammer")
	if svc == nil {
		t.Fatal("no service Hammer")
	}
	for _, want := range original.methods {
		name, _, _ := strings.Cut(want, "(")
		m := svc.Methods().ByName(protoreflect.Name(name))
		if m == nil {
			t.Errorf("method %s is missing", name)
			continue
		}
		if m.IsStreamingClient() || m.IsStreamingServer() {
			t.Errorf("method %s streams; the original is unary", name)
		}
		if got := fmt.Sprintf("%s(%s) %s", m.Name(), m.Input().Name(), m.Output().Name()); got != want {
			t.Errorf("method %s, want %s", got, want)
		}
	}
	for msg, want := range original.fields {
		md := file.Messages().ByName(protoreflect.Name(msg))
		if md == nil {
			t.Errorf("message %s is missing", msg)
			continue
		}
		for _, f := range strings.Fields(want) {
			name, _, _ := strings.Cut(f, "=")
			fd := md.Fields().ByName(protoreflect.Name(name))
			if fd == nil {
				t.Errorf("%s.%s is missing", msg, name)
				continue
			}
			if got := name + "=" + describe(fd); got != f {
				t.Errorf("%s: field %s, want %s", msg, got, f)
			}
		}
	}
}

// describe is a field's number and type as the table above writes them:
// "3:string", "1:Topic", "1:[]Topic".
func describe(fd protoreflect.FieldDescriptor) string {
	typ := fd.Kind().String()
	if md := fd.Message(); md != nil {
		typ = string(md.Name())
	}
	if fd.IsList() {
		typ = "[]" + typ
	}
	return fmt.Sprintf("%d:%s", fd.Number(), typ)
}
