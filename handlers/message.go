package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
)

// ReplayMetadataKey marks a message that replays a dead letter.
const ReplayMetadataKey = "eventflow_replay"

// EventMessage encodes e as a transport message: the message UUID is the
// event_id, the payload the event as JSON, and the metadata carries the
// correlation id and the event type.
func EventMessage(ctx context.Context, e schema.Event) (*message.Message, error) {
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	msg := message.NewMessageWithContext(ctx, e.ID.String(), payload)
	msg.Metadata.Set(middleware.EventTypeMetadataKey, e.Type)
	if e.CorrelationID != "" {
		wmw.SetCorrelationID(e.CorrelationID, msg)
	}
	return msg, nil
}

// DecodeEventMessage decodes a message made by EventMessage.
func DecodeEventMessage(msg *message.Message) (schema.Event, error) {
	e, err := schema.UnmarshalEvent(msg.Payload)
	if err != nil {
		return schema.Event{}, fmt.Errorf("decode event message %s: %w", msg.UUID, err)
	}
	if e.ID.String() != msg.UUID {
		return schema.Event{}, fmt.Errorf("decode event message %s: payload has event_id %s", msg.UUID, e.ID)
	}
	if e.Type == "" || len(e.Payload) == 0 {
		return schema.Event{}, fmt.Errorf("decode event message %s: event_type or payload missing", msg.UUID)
	}
	return e, nil
}
