package postgres

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/transport"
)

// outboxTable holds the messages of every topic; migration
// 00002_outbox.sql creates it.
const outboxTable = "eventflow_outbox"

// maxParams is how many bind parameters one Postgres statement may have.
const maxParams = 65535

// validTopic matches the topic names that watermill-sql's Subscribe
// accepts. The topic is a bound parameter here, never spliced into SQL,
// but a message published to a topic that cannot be subscribed would stay
// in the outbox for good.
var validTopic = regexp.MustCompile(`^[A-Za-z0-9\-$:._]+$`)

// schemaAdapter is the watermill-sql SchemaAdapter of the outbox: every
// topic in the one table, each consumer locking a batch of rows that no
// other consumer holds. See the package documentation for why not
// watermill-sql's DefaultPostgreSQLSchema.
type schemaAdapter struct {
	batchSize int
}

var _ wsql.SchemaAdapter = schemaAdapter{}

// InsertQuery inserts all messages with one statement, so that a Publish
// of several messages is atomic even outside a transaction.
func (a schemaAdapter) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	if !validTopic.MatchString(params.Topic) {
		return wsql.Query{}, fmt.Errorf("topic %q: %w", params.Topic, wsql.ErrInvalidTopicName)
	}
	if len(params.Msgs) == 0 {
		return wsql.Query{}, errors.New("no messages to insert")
	}
	if n := 1 + 3*len(params.Msgs); n > maxParams {
		return wsql.Query{}, fmt.Errorf("%d messages in one publish need %d parameters, over Postgres's %d: publish fewer at once",
			len(params.Msgs), n, maxParams)
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO ` + outboxTable + ` (topic, uuid, payload, metadata) VALUES `)
	args := make([]any, 1, 1+3*len(params.Msgs))
	args[0] = params.Topic
	for i, msg := range params.Msgs {
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($1, $%d, $%d, $%d)", n+1, n+2, n+3)
		metadata := msg.Metadata
		if metadata == nil {
			metadata = message.Metadata{}
		}
		// A map of strings always marshals: invalid UTF-8 is replaced.
		metadataJSON, _ := json.Marshal(metadata)
		payload := []byte(msg.Payload)
		if payload == nil {
			payload = []byte{} // NULL otherwise
		}
		args = append(args, msg.UUID, payload, string(metadataJSON))
	}
	return wsql.Query{Query: q.String(), Args: args}, nil
}

// SelectQuery locks the next batch of rows of the topic that no other
// transaction holds. A row locked by another consumer is skipped, not
// waited for: the consumers of every process work side by side, each on
// its own batch.
func (a schemaAdapter) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	if params.ConsumerGroup != "" {
		return wsql.Query{}, errors.New("the outbox has no consumer groups: the subscribers of a topic share its messages")
	}
	return wsql.Query{
		Query: `SELECT "offset", uuid, payload, metadata FROM ` + outboxTable + `
			WHERE topic = $1
			ORDER BY "offset"
			LIMIT $2
			FOR UPDATE SKIP LOCKED`,
		Args: []any{params.Topic, a.batchSize},
	}, nil
}

// UnmarshalMessage turns a row into a message. It fails only when the row
// cannot be read at all: watermill-sql rolls back the batch on an error
// and polls again, so a row refused here would stop its consumer for good.
// A row that is not a valid message (written by hand, say) becomes a
// message flagged with transport.MalformedMetadataKey instead.
func (a schemaAdapter) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var r wsql.Row
	if err := params.Row.Scan(&r.Offset, &r.UUID, &r.Payload, &r.Metadata); err != nil {
		return wsql.Row{}, fmt.Errorf("scan outbox row: %w", err)
	}
	r.Msg = decodeRow(r.UUID, r.Payload, r.Metadata)
	return r, nil
}

// decodeRow builds the message of a row. The metadata must be a JSON
// object of strings and the UUID must not be empty; otherwise the message
// keeps the row's payload, gets a new UUID when it had none, and has only
// MalformedMetadataKey in its metadata, saying what is wrong.
func decodeRow(id, payload, metadata []byte) *message.Message {
	msg := message.NewMessage(string(id), payload)
	var problems []string
	if len(id) == 0 {
		msg.UUID = uuid.NewString()
		problems = append(problems, "empty uuid")
	}
	if err := json.Unmarshal(metadata, &msg.Metadata); err != nil {
		msg.Metadata = message.Metadata{}
		problems = append(problems, fmt.Sprintf("metadata is not a JSON object of strings: %v", err))
	}
	if msg.Metadata == nil { // JSON null
		msg.Metadata = message.Metadata{}
	}
	if len(problems) > 0 {
		msg.Metadata = message.Metadata{transport.MalformedMetadataKey: "outbox row: " + strings.Join(problems, "; ")}
		return msg
	}
	// The flag describes the row as read. Dropping a copied flag lets a
	// dead-lettered message that is published again be processed again.
	delete(msg.Metadata, transport.MalformedMetadataKey)
	return msg
}

// SchemaInitializingQueries returns nothing: the migration creates the
// table, and watermill-sql refuses to create tables through a transaction
// anyway, which PublishTx is.
func (a schemaAdapter) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// SubscribeIsolationLevel is READ COMMITTED. Under REPEATABLE READ, locking
// a row that another consumer deleted after this transaction's snapshot
// fails with "could not serialize access due to concurrent update", and
// the whole batch is rolled back; READ COMMITTED sees the row is gone and
// skips it. Nothing here needs a snapshot: the rows are locked.
func (a schemaAdapter) SubscribeIsolationLevel() sql.IsolationLevel {
	return sql.LevelReadCommitted
}
