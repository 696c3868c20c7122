package redis

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

func TestTolerantUnmarshallerDecodesWatermillEntries(t *testing.T) {
	t.Parallel()
	sent := message.NewMessage(uuid.NewString(), []byte(`{"type":"signup"}`))
	sent.Metadata.Set("correlation_id", "c-1")
	// Copied from a dead-lettered message: not malformed any more.
	sent.Metadata.Set(MalformedMetadataKey, "earlier reason")

	got, err := tolerantUnmarshaller{}.Unmarshal(asRead(t, sent))
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if got.UUID != sent.UUID || string(got.Payload) != string(sent.Payload) {
		t.Errorf("got %s %q, want %s %q", got.UUID, got.Payload, sent.UUID, sent.Payload)
	}
	if got.Metadata.Get("correlation_id") != "c-1" {
		t.Errorf("metadata = %v, want correlation_id c-1", got.Metadata)
	}
	if reason, ok := IsMalformed(got); ok {
		t.Errorf("IsMalformed = %q, true; want false", reason)
	}
}

func TestTolerantUnmarshallerFlagsMalformedEntries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		values map[string]any
		reason string
	}{
		{
			name:   "foreign producer",
			values: map[string]any{"event": "signup", "user": "42"},
			reason: redisstream.UUIDHeaderKey,
		},
		{
			name: "metadata not msgpack",
			values: map[string]any{
				redisstream.UUIDHeaderKey: uuid.NewString(),
				"metadata":                "\xc1 not msgpack",
				"payload":                 "{}",
			},
			reason: "metadata",
		},
		{
			name: "field not a string",
			values: map[string]any{
				redisstream.UUIDHeaderKey: 42,
				"payload":                 "{}",
			},
			reason: "panicked",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg, err := tolerantUnmarshaller{}.Unmarshal(tc.values)
			if err != nil {
				t.Fatalf("Unmarshal returned error %v, want a flagged message", err)
			}
			reason, ok := IsMalformed(msg)
			if !ok || !strings.Contains(reason, tc.reason) {
				t.Errorf("IsMalformed = %q, %t; want a reason mentioning %q", reason, ok, tc.reason)
			}
			if _, err := uuid.Parse(msg.UUID); err != nil {
				t.Errorf("UUID %q: %v", msg.UUID, err)
			}
			var fields map[string]string
			if err := json.Unmarshal(msg.Payload, &fields); err != nil {
				t.Fatalf("payload %s is not a JSON object of strings: %v", msg.Payload, err)
			}
			if len(fields) != len(tc.values) {
				t.Errorf("payload %s, want the %d fields of the entry", msg.Payload, len(tc.values))
			}
		})
	}
}

func TestSubscriberDeliversMalformedEntries(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	// One consumer: if the foreign entry ended it, nothing else would come.
	tr := newTestTransport(t, Config{Consumers: 1})

	foreign := map[string]any{"event": "signup", "user": "42"}
	if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: topic, Values: foreign}).Err(); err != nil {
		t.Fatalf("XADD: %v", err)
	}
	sent := publish(t, tr, topic, "after the foreign entry")

	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	first := receive(t, msgs)
	if reason, ok := IsMalformed(first); !ok {
		t.Errorf("foreign entry not flagged: %s %q", first.UUID, first.Payload)
	} else {
		t.Logf("flagged: %s", reason)
	}
	var fields map[string]string
	if err := json.Unmarshal(first.Payload, &fields); err != nil {
		t.Errorf("payload %s: %v", first.Payload, err)
	}
	if !maps.Equal(fields, map[string]string{"event": "signup", "user": "42"}) {
		t.Errorf("payload %s, want the foreign entry's fields", first.Payload)
	}
	first.Ack()

	second := receive(t, msgs)
	if second.UUID != sent.UUID {
		t.Errorf("second message %s, want %s", second.UUID, sent.UUID)
	}
	if reason, ok := IsMalformed(second); ok {
		t.Errorf("well-formed message flagged: %s", reason)
	}
	second.Ack()

	// Consumption goes on, and the foreign entry was acknowledged.
	third := publish(t, tr, topic, "still consuming")
	if got := receive(t, msgs); got.UUID != third.UUID {
		t.Errorf("third message %s, want %s", got.UUID, third.UUID)
	} else {
		got.Ack()
	}
	eventually(t, depthIs(t, tr, topic, 0))
}

// asRead returns the stream entry that redisstream's publisher writes for
// msg, with the field values as go-redis reads them back: strings.
func asRead(t *testing.T, msg *message.Message) map[string]any {
	t.Helper()
	written, err := redisstream.DefaultMarshallerUnmarshaller{}.Marshal("topic", msg)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	read := make(map[string]any, len(written))
	for k, v := range written {
		switch v := v.(type) {
		case []byte:
			read[k] = string(v)
		default:
			read[k] = v
		}
	}
	return read
}
