package store_test

import (
	"testing"

	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/schema/store/storetest"
)

func TestMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}
