package postgres

import (
	"math/rand/v2"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// jitteredPolls spreads the polls of idle consumers: after an empty poll
// a consumer waits a random time between half and one and a half
// PollInterval, PollInterval on average, instead of exactly PollInterval.
// Consumers started together would otherwise poll in step forever, so
// that an event waited PollInterval/2 on average whatever their number;
// spread out, they see it after about PollInterval/(Consumers+1).
// Errors are handled as watermill-sql's default does.
type jitteredPolls struct {
	wsql.BackoffManager
	pollInterval time.Duration
}

func newJitteredPolls(pollInterval time.Duration) jitteredPolls {
	return jitteredPolls{
		BackoffManager: wsql.NewDefaultBackoffManager(pollInterval, retryInterval),
		pollInterval:   pollInterval,
	}
}

func (j jitteredPolls) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err == nil && noMsg {
		return j.pollInterval/2 + rand.N(j.pollInterval)
	}
	return j.BackoffManager.HandleError(logger, noMsg, err)
}
