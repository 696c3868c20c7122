package postgres

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventflow/eventflow/transport"
)

func TestInsertQuery(t *testing.T) {
	t.Parallel()
	a := schemaAdapter{batchSize: 10}
	m1 := message.NewMessage("id-1", []byte("p1"))
	m1.Metadata.Set("k", "v")
	m2 := message.NewMessage("id-2", nil)
	m2.Metadata = nil
	q, err := a.InsertQuery(wsql.InsertQueryParams{Topic: "events", Msgs: message.Messages{m1, m2}})
	if err != nil {
		t.Fatalf("InsertQuery: %v", err)
	}
	if !strings.HasSuffix(q.Query, "VALUES ($1, $2, $3, $4), ($1, $5, $6, $7)") {
		t.Errorf("query %q, want one row of placeholders per message", q.Query)
	}
	want := []any{"events", "id-1", []byte("p1"), `{"k":"v"}`, "id-2", []byte{}, `{}`}
	if len(q.Args) != len(want) {
		t.Fatalf("args %q, want %q", q.Args, want)
	}
	for i := range want {
		if b, ok := want[i].([]byte); ok {
			if got, ok := q.Args[i].([]byte); !ok || string(got) != string(b) || got == nil {
				t.Errorf("arg %d = %#v, want %#v", i, q.Args[i], want[i])
			}
		} else if q.Args[i] != want[i] {
			t.Errorf("arg %d = %#v, want %#v", i, q.Args[i], want[i])
		}
	}

	if _, err := a.InsertQuery(wsql.InsertQueryParams{Topic: "events"}); err == nil {
		t.Error("InsertQuery of no messages returned nil")
	}
	tooMany := make(message.Messages, maxParams/3)
	for i := range tooMany {
		tooMany[i] = message.NewMessage("x", nil)
	}
	if _, err := a.InsertQuery(wsql.InsertQueryParams{Topic: "events", Msgs: tooMany}); err == nil {
		t.Errorf("InsertQuery of %d messages returned nil", len(tooMany))
	}
}

func TestSelectQuery(t *testing.T) {
	t.Parallel()
	a := schemaAdapter{batchSize: 7}
	q, err := a.SelectQuery(wsql.SelectQueryParams{Topic: "events"})
	if err != nil {
		t.Fatalf("SelectQuery: %v", err)
	}
	if !strings.Contains(q.Query, "FOR UPDATE SKIP LOCKED") {
		t.Errorf("query %q does not skip locked rows", q.Query)
	}
	if len(q.Args) != 2 || q.Args[0] != "events" || q.Args[1] != 7 {
		t.Errorf("args %v, want [events 7]", q.Args)
	}
	if _, err := a.SelectQuery(wsql.SelectQueryParams{Topic: "events", ConsumerGroup: "g"}); err == nil {
		t.Error("SelectQuery with a consumer group returned nil")
	}
	if got := a.SubscribeIsolationLevel(); got != sql.LevelReadCommitted {
		t.Errorf("isolation level %v, want READ COMMITTED", got)
	}
}

// fakeRow is a row of the select: offset, uuid, payload, metadata.
type fakeRow struct {
	uuid, payload, metadata []byte
	err                     error
}

func (r fakeRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*int64) = 42
	*dest[1].(*[]byte) = r.uuid
	*dest[2].(*[]byte) = r.payload
	*dest[3].(*[]byte) = r.metadata
	return nil
}

func TestUnmarshalMessage(t *testing.T) {
	t.Parallel()
	a := schemaAdapter{}
	for _, tc := range []struct {
		name      string
		row       fakeRow
		malformed string // in the flag; empty for a valid row
		metadata  message.Metadata
	}{
		{"valid", fakeRow{[]byte("id"), []byte("p"), []byte(`{"k":"v"}`), nil}, "", message.Metadata{"k": "v"}},
		{"JSON null metadata", fakeRow{[]byte("id"), []byte("p"), []byte(`null`), nil}, "", message.Metadata{}},
		{"copied flag dropped", fakeRow{[]byte("id"), []byte("p"), []byte(`{"eventflow_malformed":"old"}`), nil}, "", message.Metadata{}},
		{"array metadata", fakeRow{[]byte("id"), []byte("p"), []byte(`[1]`), nil}, "metadata is not a JSON object of strings", nil},
		{"number in metadata", fakeRow{[]byte("id"), []byte("p"), []byte(`{"k":1}`), nil}, "metadata is not a JSON object of strings", nil},
		{"empty uuid", fakeRow{nil, []byte("p"), []byte(`{}`), nil}, "empty uuid", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := a.UnmarshalMessage(wsql.UnmarshalMessageParams{Row: tc.row})
			if err != nil {
				t.Fatalf("UnmarshalMessage: %v", err)
			}
			if r.Offset != 42 || r.Msg == nil || string(r.Msg.Payload) != "p" || r.Msg.UUID == "" {
				t.Fatalf("row %+v, want offset 42 and a message with payload p and a uuid", r)
			}
			reason, flagged := r.Msg.Metadata[transport.MalformedMetadataKey]
			if tc.malformed == "" {
				if flagged {
					t.Errorf("flagged %q, want a valid message", reason)
				}
				if len(r.Msg.Metadata) != len(tc.metadata) || r.Msg.Metadata["k"] != tc.metadata["k"] {
					t.Errorf("metadata %v, want %v", r.Msg.Metadata, tc.metadata)
				}
				return
			}
			if !strings.Contains(reason, tc.malformed) || len(r.Msg.Metadata) != 1 {
				t.Errorf("metadata %v, want only the flag, saying %q", r.Msg.Metadata, tc.malformed)
			}
		})
	}

	scanErr := errors.New("connection lost")
	if _, err := a.UnmarshalMessage(wsql.UnmarshalMessageParams{Row: fakeRow{err: scanErr}}); !errors.Is(err, scanErr) {
		t.Errorf("UnmarshalMessage of an unreadable row: got %v, want %v", err, scanErr)
	}
}
