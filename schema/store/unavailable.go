package store

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/lib/pq"
)

// IsUnavailable reports whether err says that the database could not do
// the work at all — it cannot be reached, the connection broke, it is
// starting up or shutting down, or it has no connection slot free — rather
// than that it refused this statement. Such a failure says nothing about
// the event: the worker leaves the event for redelivery instead of
// dead-lettering it when its retries run out during an outage.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if pqErr, ok := errors.AsType[*pq.Error](err); ok {
		switch pqErr.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"53300": // too_many_connections
			return true
		}
		return pqErr.Code.Class() == "08" // connection_exception
	}
	if _, ok := errors.AsType[*net.OpError](err); ok { // refused, reset, unreachable
		return true
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
