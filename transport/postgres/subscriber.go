package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/lib/pq"

	"github.com/eventflow/eventflow/transport"
)

// ErrClosed is returned by Subscribe, Publish and PublishTx after Close.
var ErrClosed = errors.New("postgres transport is closed")

// closeGrace is how long a closing subscription lets its consumers finish
// the batch under way (commit what was acked) before it cancels their
// queries, which only a database that stopped answering makes necessary.
const closeGrace = 10 * time.Second

// subscriber runs, for each Subscribe call, Config.Consumers consumers of
// the topic, all sending to one channel. Each consumer hands out its whole
// batch at once, so the channel carries up to Consumers × BatchSize
// messages in flight.
type subscriber struct {
	cfg    Config
	schema schemaAdapter
	logger watermill.LoggerAdapter

	mu     sync.Mutex
	closed bool
	active map[*subscription]struct{}
	// closeDone is closed when the first Close has finished.
	closeDone chan struct{}
}

// subscription is one Subscribe call.
type subscription struct {
	stopping chan struct{} // closed by stop
	stopOnce sync.Once
	// done is closed after the consumers have returned and the channel is
	// closed; closeErr is set before.
	done     chan struct{}
	closeErr error
}

func (s *subscription) stop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

func newSubscriber(cfg Config, schema schemaAdapter, logger watermill.LoggerAdapter) *subscriber {
	return &subscriber{
		cfg:       cfg,
		schema:    schema,
		logger:    logger,
		active:    make(map[*subscription]struct{}),
		closeDone: make(chan struct{}),
	}
}

// Subscribe starts Config.Consumers consumers of topic and returns the
// channel that carries the messages of all of them. Every subscription of
// a topic, in this process or another, shares its messages: each message
// goes to one of them.
//
// The channel is closed when ctx is cancelled or Close is called. The
// consumers then stop waiting for acks: what was acked in their batches is
// deleted, the rest is unlocked and delivered again.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if !validTopic.MatchString(topic) {
		return nil, fmt.Errorf("subscribe to %q: %w", topic, wsql.ErrInvalidTopicName)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrClosed)
	}
	sub := &subscription{stopping: make(chan struct{}), done: make(chan struct{})}
	s.active[sub] = struct{}{}
	s.mu.Unlock()

	// The consumers' queries do not end with ctx, but when the consumers
	// have finished their batches: cancelling them would roll back the
	// acks of the batches under way, and those messages would be handled
	// twice. runCancel stops them only when that takes longer than
	// closeGrace. Values of ctx stay visible in the messages' contexts.
	runCtx, runCancel := context.WithCancel(context.WithoutCancel(ctx))
	out := make(chan *message.Message)
	redelivering := make(chan struct{}, 1)
	var consumers sync.WaitGroup
	for i := range s.cfg.Consumers {
		c := &consumer{cfg: s.cfg, schema: s.schema, logger: s.logger, topic: topic, out: out, stopping: sub.stopping,
			redelivering: redelivering, sweeps: i == 0 && !s.cfg.SkipDeliveryCounts}
		// Started apart, so that idle consumers poll at different times.
		start := time.Duration(i) * s.cfg.PollInterval / time.Duration(s.cfg.Consumers)
		consumers.Go(func() { c.run(runCtx, start) })
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-sub.stopping:
		}
		sub.stop()
		finished := make(chan struct{})
		go func() { consumers.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(closeGrace):
			sub.closeErr = fmt.Errorf("consumers of %s did not finish their batches within %s: their messages are delivered again", topic, closeGrace)
			runCancel()
			<-finished
		}
		runCancel()
		s.release(sub)
		close(out)
		close(sub.done)
	}()

	s.logger.Info("Subscribed to postgres outbox", watermill.LogFields{
		"topic":      topic,
		"consumers":  s.cfg.Consumers,
		"batch_size": s.cfg.BatchSize,
	})
	return out, nil
}

// consumer is one loop of a subscription: lock a batch, hand it out, wait
// for the acks, delete the acked rows, commit, and again.
type consumer struct {
	cfg      Config
	schema   schemaAdapter
	logger   watermill.LoggerAdapter
	topic    string
	out      chan<- *message.Message
	stopping <-chan struct{}
	// redelivering is the subscription's one token for handing out a
	// row delivered before (see record): one such row in flight per
	// process.
	redelivering chan struct{}
	// sweeps tells whether this consumer sweeps the delivery records
	// (see sweep): the first of each subscription does.
	sweeps bool
}

// run handles batches until the subscription stops. A batch that found
// rows is followed by the next poll at once; an empty one by a wait of about
// PollInterval, jittered so that idle consumers do not poll in step; a
// failed one by retryInterval.
func (c *consumer) run(ctx context.Context, start time.Duration) {
	wait := start
	var swept time.Time
	for c.sleep(wait) {
		if c.sweeps && time.Since(swept) >= sweepEvery {
			swept = time.Now()
			if err := c.sweep(ctx); err != nil {
				c.logger.Error("Sweeping the outbox's delivery records failed", err, watermill.LogFields{"topic": c.topic})
			}
		}
		n, err := c.batch(ctx)
		switch {
		case err != nil:
			c.logger.Error("Outbox batch failed; its messages are delivered again", err, watermill.LogFields{"topic": c.topic})
			wait = retryInterval
		case n == 0:
			wait = jitter(c.cfg.PollInterval)
		default:
			wait = 0
		}
	}
}

// jitter returns a random duration between half and one and a half d, d
// on average. Consumers started together would otherwise poll in step
// forever, so that an event waited PollInterval/2 on average whatever
// their number; spread out, they see it after about
// PollInterval/(Consumers+1).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// sleep waits d and reports whether the subscription is still running.
func (c *consumer) sleep(d time.Duration) bool {
	if c.stopped() {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.stopping:
		return false
	case <-t.C:
		return true
	}
}

// batch locks up to BatchSize rows of the topic that nobody else holds,
// hands their messages out, and deletes the acked ones in the same
// transaction. It returns how many rows it locked. The rows not acked are
// unlocked when the transaction ends, to be delivered again; if the
// delete or the commit fails, so are the acked ones.
func (c *consumer) batch(ctx context.Context) (int, error) {
	tx, err := c.cfg.DB.BeginTx(ctx, &sql.TxOptions{Isolation: c.schema.SubscribeIsolationLevel()})
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := c.lock(ctx, tx)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	rec, err := c.record(ctx, rows)
	if err != nil {
		return len(rows), err
	}
	if rec.token {
		defer func() { <-c.redelivering }()
	}
	if rec.handedOut == 0 {
		// Another consumer of this process is handing out a row delivered
		// before, and this batch starts with one: leave the batch, and poll
		// again after the usual wait.
		return 0, nil
	}
	acked, unacked := c.deliver(ctx, tx, rows[:rec.handedOut])
	if err := c.settle(ctx, tx, rec, acked, unacked); err != nil {
		return len(rows), err
	}
	if err := tx.Commit(); err != nil {
		return len(rows), fmt.Errorf("commit %d acked rows: %w", len(acked), err)
	}
	return len(rows), nil
}

// deliveriesTable records the batches handed out and not settled yet;
// migration 00005_outbox_deliveries.sql creates it.
const deliveriesTable = "eventflow_outbox_deliveries"

// asyncCommit starts a statement whose own transaction commits without
// waiting for the WAL flush: SELECT from async in it so that it runs.
const asyncCommit = `WITH async AS (SELECT set_config('synchronous_commit', 'off', true))`

// delivery is the record of one batch in deliveriesTable.
type delivery struct {
	// id is the record's, 0 when deliveries are not counted.
	id int64
	// handedOut is how many rows of the batch, from the first, go out.
	handedOut int
	// token tells whether the batch holds the subscription's redelivery
	// token, to give back when it ends.
	token bool
}

// record writes down that the batch is about to be handed out, in a
// statement of its own on another connection, committed before the batch
// goes out: the batch's transaction, which a worker's crash rolls back,
// cannot hold it. How many times a row was delivered is how many records
// name it; a settled batch deletes its record (see settle), so the records
// left are those of batches in flight and of batches whose worker crashed
// or hung. A message whose row was delivered before carries its count in
// transport.DeliveriesMetadataKey, and the process handler quarantines it
// above EVENTFLOW_MAX_DELIVERIES.
//
// A row delivered before and never acked was in flight when a worker
// crashed or hung: perhaps because of it, perhaps beside the message that
// caused it. So that the innocent ones do not gain a delivery at every
// crash of the guilty one and end up quarantined with it, such rows are
// handed out one at a time per process: the batch goes out up to its
// first such row; when that row comes first, it goes out alone, and only
// if no other consumer of the subscription has one out (the token);
// otherwise nothing goes out (handedOut 0). The rest of the batch stays
// locked, not handed out, until the batch ends. Only what goes out is
// recorded. (The Redis transport claims such entries one at a time for
// the same reason.)
//
// The record is committed without waiting for the WAL flush
// (synchronous_commit off for its statement's own transaction), and the
// table is unlogged: what it must survive is a worker's crash, not
// Postgres's.
func (c *consumer) record(ctx context.Context, rows []wsql.Row) (delivery, error) {
	rec := delivery{handedOut: len(rows)}
	if c.cfg.SkipDeliveryCounts {
		return rec, nil
	}
	// A record is a write on another connection while this one holds the
	// batch: bounded, so that a pool with no connection to spare fails
	// the batch instead of holding it for good.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AckDeadline)
	defer cancel()
	offsets := make([]int64, len(rows))
	for i, r := range rows {
		offsets[i] = r.Offset
	}
	// prior reads the records as they were before this statement, whose
	// insert happens only when no row of the batch was delivered before:
	// the common case takes one round trip.
	res, err := c.cfg.DB.QueryContext(ctx, `
		`+asyncCommit+`,
		prior AS (
			SELECT o, count(*) AS n
			FROM `+deliveriesTable+`, unnest(offsets) AS o
			WHERE offsets && $1::bigint[] AND o = ANY ($1::bigint[])
			GROUP BY o),
		batch AS (
			INSERT INTO `+deliveriesTable+` (offsets)
			SELECT $1::bigint[] FROM async WHERE NOT EXISTS (SELECT FROM prior)
			RETURNING id)
		SELECT (SELECT id FROM batch), prior.o, prior.n FROM (SELECT) AS one LEFT JOIN prior ON true`, pq.Array(offsets))
	if err != nil {
		return delivery{}, fmt.Errorf("record the delivery of %d rows: %w", len(rows), err)
	}
	defer func() { _ = res.Close() }()
	before := make(map[int64]int)
	for res.Next() {
		var id, offset, n sql.NullInt64
		if err := res.Scan(&id, &offset, &n); err != nil {
			return delivery{}, fmt.Errorf("record the delivery: %w", err)
		}
		rec.id = id.Int64
		if offset.Valid {
			before[offset.Int64] = int(n.Int64)
		}
	}
	if err := res.Err(); err != nil {
		return delivery{}, fmt.Errorf("record the delivery: %w", err)
	}
	if len(before) == 0 {
		if rec.id == 0 {
			return delivery{}, errors.New("record the delivery: no record written")
		}
		return rec, nil
	}

	for i, r := range rows {
		if before[r.Offset] > 0 {
			rec.handedOut = i
			break
		}
	}
	if rec.handedOut == 0 {
		select {
		case c.redelivering <- struct{}{}:
			rec.token = true
			rec.handedOut = 1
			rows[0].Msg.Metadata.Set(transport.DeliveriesMetadataKey, strconv.Itoa(before[rows[0].Offset]+1))
		default:
			return rec, nil
		}
	}
	err = c.cfg.DB.QueryRowContext(ctx, `
		`+asyncCommit+`
		INSERT INTO `+deliveriesTable+` (offsets) SELECT $1::bigint[] FROM async RETURNING id`,
		pq.Array(offsets[:rec.handedOut])).Scan(&rec.id)
	if err != nil {
		if rec.token {
			<-c.redelivering
		}
		return delivery{}, fmt.Errorf("record the delivery of %d rows: %w", rec.handedOut, err)
	}
	return rec, nil
}

// sweepEvery is how often the first consumer of a subscription sweeps the
// delivery records.
const sweepEvery = time.Minute

// sweep strikes from the delivery records the rows that have left the
// outbox some other way than a batch that redelivered them: acked by a
// worker that does not count deliveries (Config.SkipDeliveryCounts, or
// EVENTFLOW_MAX_DELIVERIES=0 on part of a fleet), or deleted by hand. Only
// records older than twice AckDeadline are looked at, whose batches have
// ended; emptied records are deleted. The records are few (batches in
// flight, and those of crashed workers), so this is cheap.
func (c *consumer) sweep(ctx context.Context) error {
	tx, err := c.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `
		UPDATE `+deliveriesTable+` d
		SET offsets = ARRAY(SELECT x FROM unnest(d.offsets) AS x
		                    WHERE EXISTS (SELECT FROM `+outboxTable+` o WHERE o."offset" = x))
		WHERE d.created_at < now() - $1 * interval '1 millisecond'`, (2 * c.cfg.AckDeadline).Milliseconds()); err != nil {
		return err
	}
	if err := deleteEmptyRecords(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// settle deletes the acked rows of the batch and the deliveries that no
// longer count, in the batch's transaction: they go with the rows' delete
// or not at all.
//
// The batch's own record goes when every message was acked, and also
// when a close cut a batch of fresh rows short: a close (a deploy, say)
// says nothing against the messages it interrupts, so their delivery does
// not count and they come back as a batch, not one at a time. Otherwise
// (AckDeadline passed, or a close cut short a row delivered before) the
// record keeps the rows handed out and not acked. A row delivered before
// and acked now is struck from the records of the earlier batches that
// named it.
func (c *consumer) settle(ctx context.Context, tx *sql.Tx, rec delivery, acked, unacked []int64) error {
	if rec.id == 0 {
		if len(acked) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+outboxTable+` WHERE "offset" = ANY ($1)`, pq.Array(acked)); err != nil {
			return fmt.Errorf("delete %d acked rows: %w", len(acked), err)
		}
		return nil
	}
	// A close drops the record of a fresh batch, but not of a row
	// delivered before: a poison that hangs its worker until a liveness
	// probe restarts it must still gain a delivery each time.
	var keep []int64
	if !c.stopped() || rec.token {
		keep = unacked
	}
	q, args := `DELETE FROM `+deliveriesTable+` WHERE id = $2`, []any{pq.Array(acked), rec.id}
	if len(keep) > 0 {
		q, args = `UPDATE `+deliveriesTable+` SET offsets = $3 WHERE id = $2`, append(args, pq.Array(keep))
	}
	if _, err := tx.ExecContext(ctx, `WITH acked AS (DELETE FROM `+outboxTable+` WHERE "offset" = ANY ($1)) `+q, args...); err != nil {
		return fmt.Errorf("delete %d acked rows: %w", len(acked), err)
	}
	if !rec.token || len(acked) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE `+deliveriesTable+` SET offsets = ARRAY(SELECT x FROM unnest(offsets) AS x WHERE x <> ALL ($1))
		WHERE offsets && $1 AND id <> $2`, pq.Array(acked), rec.id); err != nil {
		return fmt.Errorf("strike %d acked rows from earlier deliveries: %w", len(acked), err)
	}
	return deleteEmptyRecords(ctx, tx)
}

// deleteEmptyRecords deletes the delivery records that rows were struck
// from until none was left.
func deleteEmptyRecords(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+deliveriesTable+` WHERE offsets = '{}'`); err != nil {
		return fmt.Errorf("delete the emptied delivery records: %w", err)
	}
	return nil
}

// lock selects and locks the next batch (schemaAdapter.SelectQuery) and
// reads its rows (schemaAdapter.UnmarshalMessage).
func (c *consumer) lock(ctx context.Context, tx *sql.Tx) ([]wsql.Row, error) {
	q, err := c.schema.SelectQuery(wsql.SelectQueryParams{Topic: c.topic})
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, q.Query, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("lock a batch: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var batch []wsql.Row
	for rows.Next() {
		r, err := c.schema.UnmarshalMessage(wsql.UnmarshalMessageParams{Row: rows})
		if err != nil {
			return nil, err
		}
		batch = append(batch, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the batch: %w", err)
	}
	return batch, nil
}

// deliver hands every message of the batch out, in the order of the rows,
// without waiting for one ack before the next message: the handler has
// the whole batch in flight, and its group commits share a batch's rows.
// It returns the offsets of the messages acked before the batch ended, and
// of the others handed out (in flight, or waiting for a resend); rows not
// handed out at all are in neither. The batch ends
// when every message is acked, when AckDeadline has passed since the
// batch was locked, when the subscription stops, or when the batch's
// transaction is found dead. The contexts of the messages still in
// flight are then cancelled.
//
// A nacked message is handed out again after ResendInterval, its row
// still locked, while the rest of the batch goes on.
//
// While the batch is out, tx is pinged every heartbeat: a connection
// lost meanwhile (the server restarted, or ended it for being idle in
// transaction too long) has released the rows to other consumers, which
// may be handling them already, and nothing acked can be deleted any
// more; going on would only hand out resends and make handlers wait for
// nothing until AckDeadline.
func (c *consumer) deliver(ctx context.Context, tx *sql.Tx, rows []wsql.Row) (offsets, others []int64) {
	batchCtx, cancel := context.WithTimeout(ctx, c.cfg.AckDeadline)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		c.watch(ctx, batchCtx, cancel, tx)
	}()
	// The watcher uses tx, and the caller's delete and commit come next.
	defer func() { <-watched }()
	defer cancel()

	acked := make([]bool, len(rows))
	sent := 0
	var waiting sync.WaitGroup
	for i, r := range rows {
		msg, done := c.handOut(batchCtx, r.Msg)
		if msg == nil {
			break // the batch ended before every message went out
		}
		sent++
		waiting.Go(func() {
			acked[i] = c.await(batchCtx, msg, done)
		})
	}
	waiting.Wait()

	for i, ok := range acked[:sent] {
		if ok {
			offsets = append(offsets, rows[i].Offset)
		} else {
			others = append(others, rows[i].Offset)
		}
	}
	return offsets, others
}

// stopped reports whether the subscription is stopping.
func (c *consumer) stopped() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// heartbeat is how often a consumer pings the transaction of a batch whose
// messages are out: at most every 5s, and at least four times within
// AckDeadline.
func (c *consumer) heartbeat() time.Duration {
	return min(5*time.Second, c.cfg.AckDeadline/4)
}

// watch ends the batch (calls cancel) when the subscription stops or a
// ping of tx fails, and returns when batchCtx is done.
//
// A ping does not run under batchCtx: cancelling a statement aborts its
// transaction, and a batch that ends during a ping must still delete its
// acked rows. It runs under ctx, which ends only when a closing
// subscription gives up on its consumers, with a timeout of one
// heartbeat: a ping that takes that long finds a connection as good as
// lost.
func (c *consumer) watch(ctx, batchCtx context.Context, cancel context.CancelFunc, tx *sql.Tx) {
	ticker := time.NewTicker(c.heartbeat())
	defer ticker.Stop()
	for {
		select {
		case <-c.stopping:
			cancel()
		case <-batchCtx.Done():
			return
		case <-ticker.C:
			if err := c.ping(ctx, tx); err != nil {
				c.logger.Error("Outbox batch lost its transaction; its messages are delivered again", err,
					watermill.LogFields{"topic": c.topic})
				cancel()
			}
		}
	}
}

func (c *consumer) ping(ctx context.Context, tx *sql.Tx) error {
	ctx, cancel := context.WithTimeout(ctx, c.heartbeat())
	defer cancel()
	_, err := tx.ExecContext(ctx, `SELECT 1`)
	return err
}

// handOut gives msg a context of its own, cancelled when the batch ends,
// and sends it to the subscription's channel. It returns the message and
// the cancel of its context, or nil when the batch ended first.
func (c *consumer) handOut(batchCtx context.Context, msg *message.Message) (*message.Message, context.CancelFunc) {
	// Checked first, because a select picks at random among ready cases:
	// nothing goes out once the batch has ended or the subscription is
	// stopping. The stop is checked itself, not only through batchCtx,
	// which ends a moment later: a row that a stopping consumer has just
	// released and this one locked must not be handed out after the stop.
	select {
	case <-c.stopping:
		return nil, nil
	default:
	}
	if batchCtx.Err() != nil {
		return nil, nil
	}
	msgCtx, cancel := context.WithCancel(batchCtx)
	msg.SetContext(msgCtx)
	select {
	case c.out <- msg:
		return msg, cancel
	case <-batchCtx.Done():
	case <-c.stopping:
	}
	cancel()
	return nil, nil
}

// await waits for the ack of msg, handing it out again after each nack,
// and reports whether it was acked before the batch ended. The context of
// each message handed out is cancelled once its ack or nack is in, as
// Watermill's subscribers do.
func (c *consumer) await(batchCtx context.Context, msg *message.Message, cancel context.CancelFunc) bool {
	for {
		select {
		case <-msg.Acked():
			cancel()
			return true
		case <-msg.Nacked():
			cancel()
			resend := time.NewTimer(c.cfg.ResendInterval)
			select {
			case <-resend.C:
			case <-batchCtx.Done():
				resend.Stop()
				return false
			}
			if msg, cancel = c.handOut(batchCtx, msg.Copy()); msg == nil {
				return false
			}
		case <-batchCtx.Done():
			cancel()
			// An ack given just as the batch ended still counts.
			select {
			case <-msg.Acked():
				return true
			default:
				return false
			}
		}
	}
}

func (s *subscriber) release(sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, sub)
}

// Close stops every subscription and returns once all their channels are
// closed. Close is safe to call more than once and from several
// goroutines; later calls wait for the first and return nil.
func (s *subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	s.closed = true
	subs := make([]*subscription, 0, len(s.active))
	for sub := range s.active {
		subs = append(subs, sub)
	}
	s.mu.Unlock()

	for _, sub := range subs {
		sub.stop()
	}
	var errs []error
	for _, sub := range subs {
		<-sub.done
		errs = append(errs, sub.closeErr)
	}
	close(s.closeDone)
	return errors.Join(errs...)
}
