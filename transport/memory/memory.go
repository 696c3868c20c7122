// Package memory is the in-process transport, on Watermill's GoChannel, for
// tests and the one-process dev mode.
//
// Guarantee: none beyond the process. A publish returns once the process
// handler has acknowledged every message (or the transport is closing), so
// a published event has been handled by the time its 202 is sent; a
// process that stops loses whatever is in flight.
//
// # Failure handling
//
// GoChannel re-sends a nacked message at once, in a loop: eventflow's
// dead-letter middleware acks every failure except a shutdown, so the loop
// only spins while the router is closing. Messages are kept (GoChannel's
// Persistent mode), so one published before the handler subscribes is not
// dropped. Every delivery is awaited, and GoChannel holds the topic's lock
// until the ack, so a topic's messages are handled one at a time and tests
// are deterministic: once Publish returns, the message was handled.
package memory

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/eventflow/eventflow/transport"
)

// Transport is the in-memory transport.
type Transport struct {
	pubsub *gochannel.GoChannel
	// depth counts messages published and not yet acknowledged.
	depth atomic.Int64

	mu       sync.Mutex
	next     uint64
	inFlight map[uint64]time.Time // publish calls under way, by start
}

var (
	_ transport.Transport   = (*Transport)(nil)
	_ transport.AgeReporter = (*Transport)(nil)
)

// Config configures the in-memory transport; the zero value is what
// eventflow uses.
type Config struct {
	// NoWaitForAck makes Publish return once the messages are handed to
	// the subscriber, not once they are acknowledged. Watermill's universal
	// Pub/Sub suite needs it: its tests publish before they read, which a
	// publisher that waits for the ack would deadlock.
	NoWaitForAck bool
}

// New returns an in-memory transport.
func New(cfg Config, logger watermill.LoggerAdapter) *Transport {
	return &Transport{inFlight: map[uint64]time.Time{}, pubsub: gochannel.NewGoChannel(gochannel.Config{
		BlockPublishUntilSubscriberAck: !cfg.NoWaitForAck,
		// Persistent keeps every message, so one published before the
		// handler subscribes is delivered when it does, never dropped. It
		// costs memory in proportion to the events, as the in-memory store
		// of the dev mode does anyway.
		Persistent: true,
	}, logger)}
}

// Publisher implements transport.Transport.
func (t *Transport) Publisher() message.Publisher { return publisher{t} }

// Subscriber implements transport.Transport.
func (t *Transport) Subscriber() message.Subscriber { return t.pubsub }

// Ping implements transport.Transport; memory always answers.
func (t *Transport) Ping(context.Context) error { return nil }

// Depth implements transport.Transport: the messages published and not yet
// acknowledged, whatever their topic.
func (t *Transport) Depth(context.Context, string) (int64, error) { return t.depth.Load(), nil }

// Close implements transport.Transport.
func (t *Transport) Close() error { return t.pubsub.Close() }

type publisher struct{ t *Transport }

// Publish blocks until every message was acknowledged.
func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	n := int64(len(msgs))
	p.t.depth.Add(n)
	defer p.t.depth.Add(-n)
	defer p.t.track()()
	return p.t.pubsub.Publish(topic, msgs...)
}

// track records a publish under way and returns the func that ends it.
func (t *Transport) track() func() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	id := t.next
	t.inFlight[id] = time.Now()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.inFlight, id)
	}
}

// OldestAge implements transport.AgeReporter: how long the oldest publish
// under way has waited for its ack, whatever the topic.
func (t *Transport) OldestAge(context.Context, string) (time.Duration, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest time.Time
	for _, at := range t.inFlight {
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	if oldest.IsZero() {
		return 0, nil
	}
	return time.Since(oldest), nil
}

// Close does nothing: the transport closes the GoChannel it shares with the
// subscriber.
func (p publisher) Close() error { return nil }
