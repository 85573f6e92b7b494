package state

import (
	"time"

	"github.com/wharfhq/wharf/internal/api"
)

// Scope is what a change of the state needs to know of its caller: the
// region whose keys and ARNs it concerns, and the time it happens at.
type Scope struct {
	Region string
	Now    time.Time
}

// Keys names the store keys of the scope's region.
func (sc Scope) Keys() Keys { return Keys{Region: sc.Region} }

// Time is the scope's time as a wire timestamp.
func (sc Scope) Time() *api.Time { return api.NewTime(sc.Now) }
