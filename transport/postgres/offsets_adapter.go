package postgres

import (
	"errors"
	"fmt"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/lib/pq"
)

// offsetsAdapter is the watermill-sql OffsetsAdapter of the outbox. There
// are no offsets to keep: a row is in the table until it is acked, and
// deleted then, so the next poll of any consumer finds exactly the rows
// still to handle.
type offsetsAdapter struct{}

var _ wsql.OffsetsAdapter = offsetsAdapter{}

// AckMessageQuery deletes the rows of the batch up to the last acked one,
// in the batch's transaction: they are gone once it commits.
//
// watermill-sql passes every row of the batch in params.Rows, also the
// ones after a message that was not acked (its ack deadline passed, or the
// subscriber closed). Those are not deleted: they are unlocked when the
// transaction ends and delivered again. (watermill-sql's own
// PostgreSQLQueueOffsetsAdapter deletes them all, and so loses them.)
func (offsetsAdapter) AckMessageQuery(params wsql.AckMessageQueryParams) (wsql.Query, error) {
	if params.ConsumerGroup != "" {
		return wsql.Query{}, errors.New("the outbox has no consumer groups")
	}
	// The rows come in the order they were handled, which is the order of
	// the select: the acked ones are those up to LastRow.
	acked := make([]int64, 0, len(params.Rows))
	for _, row := range params.Rows {
		acked = append(acked, row.Offset)
		if row.Offset == params.LastRow.Offset {
			return wsql.Query{
				Query: `DELETE FROM ` + outboxTable + ` WHERE "offset" = ANY($1)`,
				Args:  []any{pq.Array(acked)},
			}, nil
		}
	}
	return wsql.Query{}, fmt.Errorf("last acked row %d is not in its batch", params.LastRow.Offset)
}

// ConsumedMessageQuery returns no query: nothing is recorded before the ack.
func (offsetsAdapter) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

// NextOffsetQuery returns no query. Only DefaultPostgreSQLSchema's select
// asks for it; the outbox's select needs no position, since a row still in
// the table is one still to handle.
func (offsetsAdapter) NextOffsetQuery(wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

// SchemaInitializingQueries returns nothing: there is no offsets table.
func (offsetsAdapter) SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// BeforeSubscribingQueries returns nothing: there is no consumer group row
// to create.
func (offsetsAdapter) BeforeSubscribingQueries(wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}
