// Package middleware holds eventflow's Watermill handler middleware — dead
// letters, retry policy, attempt counting, correlation and metrics — and its
// HTTP middleware: request ids, API-key auth and panic recovery.
//
// # Order
//
// The order of Watermill middleware matters: the one added first runs
// outermost. The process handler's chain, outermost first, is
//
//	router metrics → Correlation → ActiveWorkers → Duration → DeadLetter → Retry → Attempt → Timeout → Recoverer → handler
//
// DeadLetter must wrap Retry, or a failure is dead-lettered before it was
// retried. Attempt sits inside Retry so it sees every attempt; Timeout sits
// inside Retry (with ResetContextOnRetry) so each attempt gets a fresh
// deadline; Recoverer sits innermost so a panic becomes an error that Retry
// and DeadLetter can see.
//
// # Failure handling
//
// A handler classifies its failures: an error wrapped with Permanent can
// never succeed and skips the retries; any other error is transient. A
// cancelled context is a shutdown, never a failure: DeadLetter passes it on
// so the router nacks the message and the transport redelivers it.
package middleware
