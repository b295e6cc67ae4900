package orchestrator

import (
	"sync"
	"time"
)

// Queue hands out keys to workers with controller-runtime semantics: a key
// is never processed by two workers at once, and any number of Adds while
// it is processed cause exactly one more pass. This is what serializes a
// pair (I3): both clusters' events land on the same key.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	ready      []string
	dirty      map[string]bool // queued or owed another pass
	processing map[string]bool
	timers     map[string]*delayed
	shutdown   bool
}

type delayed struct {
	t   *time.Timer
	due time.Time
}

// NewQueue returns an empty queue. It has no backoff of its own: how long a
// key waits after a pass is the controller's decision (Controller.handle).
func NewQueue() *Queue {
	q := &Queue{
		dirty:      map[string]bool{},
		processing: map[string]bool{},
		timers:     map[string]*delayed{},
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key now.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutdown || q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return // Done requeues it
	}
	q.ready = append(q.ready, key)
	q.cond.Signal()
}

// AddAfter queues key after d; an earlier pending AddAfter wins.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	due := time.Now().Add(d)
	if cur, ok := q.timers[key]; ok {
		if !cur.due.After(due) {
			return
		}
		cur.t.Stop()
	}
	dl := &delayed{due: due}
	dl.t = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.timers[key] == dl {
			delete(q.timers, key)
		}
		q.addLocked(key)
	})
	q.timers[key] = dl
}

// Get blocks until a key is ready; ok is false after ShutDown.
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.ready) == 0 {
		return "", false
	}
	key, q.ready = q.ready[0], q.ready[1:]
	delete(q.dirty, key)
	q.processing[key] = true
	return key, true
}

// Done ends the processing of key; if it was added meanwhile it is ready again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] && !q.shutdown {
		q.ready = append(q.ready, key)
		q.cond.Signal()
	}
}

// Len is the number of keys waiting (queued, owed a pass, or delayed).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.dirty)
	for k := range q.timers {
		if !q.dirty[k] {
			n++
		}
	}
	return n
}

// ShutDown wakes all Get callers; queued keys are dropped.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for _, d := range q.timers {
		d.t.Stop()
	}
	q.timers = map[string]*delayed{}
	q.ready = nil
	q.cond.Broadcast()
}
