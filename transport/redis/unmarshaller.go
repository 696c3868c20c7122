package redis

import (
	"github.com/eventflow/eventflow/transport"

	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// MalformedMetadataKey marks a message built from an entry the default
// unmarshaller refused; it is transport.MalformedMetadataKey.
const MalformedMetadataKey = transport.MalformedMetadataKey

// IsMalformed reports whether msg was read from a stream entry that could
// not be decoded as a Watermill message, such as an entry written into the
// stream by another producer, and why. Such a message has a new UUID and,
// as payload, the entry's fields as a JSON object of strings. Retrying it
// cannot help: the process handler dead-letters it as a permanent failure
// and returns nil, so it is acknowledged.
func IsMalformed(msg *message.Message) (reason string, ok bool) {
	reason, ok = msg.Metadata[MalformedMetadataKey]
	return reason, ok
}

// tolerantUnmarshaller decodes entries with redisstream's default format
// and turns every entry it cannot decode into a message flagged with
// MalformedMetadataKey. It never returns an error: redisstream ends the
// subscription on one, and the entry, left pending, would end the next
// consumer's subscription too.
type tolerantUnmarshaller struct {
	redisstream.DefaultMarshallerUnmarshaller
}

func (u tolerantUnmarshaller) Unmarshal(values map[string]any) (msg *message.Message, err error) {
	// The default unmarshaller asserts field types and runs msgpack on
	// whatever a producer wrote. It runs in redisstream's goroutine, where a
	// panic would take the process down on every restart: contain it.
	defer func() {
		if r := recover(); r != nil {
			msg, err = malformedMessage(values, fmt.Errorf("unmarshal panicked: %v", r)), nil
		}
	}()
	msg, err = u.DefaultMarshallerUnmarshaller.Unmarshal(values)
	if err != nil {
		return malformedMessage(values, err), nil
	}
	// The flag describes the entry as read. Dropping a copied flag lets a
	// dead-lettered message that is published again be processed again.
	delete(msg.Metadata, MalformedMetadataKey)
	return msg, nil
}

func malformedMessage(values map[string]any, cause error) *message.Message {
	fields := make(map[string]string, len(values))
	for k, v := range values {
		// go-redis returns field values as strings; fmt covers anything else.
		fields[k] = fmt.Sprint(v)
	}
	// Marshalling a map of strings cannot fail: invalid UTF-8 is replaced,
	// not rejected.
	payload, _ := json.Marshal(fields)
	msg := message.NewMessage(uuid.NewString(), payload)
	msg.Metadata.Set(MalformedMetadataKey, cause.Error())
	return msg
}
