package data

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrStreamClosed is returned by Next after Close.
var ErrStreamClosed = errors.New("data.Stream: closed")

// Stream produces items make(i) for i = start, start+1, ... in index order,
// computed by worker goroutines up to `ahead` items in advance, so that data
// generation overlaps with compute.
//
// make must be a pure function of i (e.g. seed a fresh rand from i), and
// safe for concurrent calls: items are computed concurrently in arbitrary
// order, and only then is the output deterministic regardless of the number
// of workers. A panic in make is returned as that index's error.
//
// Next must be called from one goroutine at a time.
type Stream[T any] struct {
	fn   func(int64) (T, error)
	next int64 // synchronous mode only

	sync    bool
	pending chan *streamItem[T]
	jobs    chan *streamItem[T]
	quit    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	closed  atomic.Bool
}

type streamItem[T any] struct {
	i    int64
	v    T
	err  error
	done chan struct{}
}

// NewStream starts a stream at index start. workers <= 0 means
// runtime.NumCPU() (capped at ahead); ahead <= 0 means synchronous: Next calls
// make itself and no goroutines are started.
func NewStream[T any](start int64, ahead, workers int, make func(i int64) (T, error)) *Stream[T] {
	return newStream(start, ahead, workers, make)
}

func newStream[T any](start int64, ahead, workers int, fn func(i int64) (T, error)) *Stream[T] {
	s := &Stream[T]{fn: fn, next: start, quit: make(chan struct{})}
	if ahead <= 0 {
		s.sync = true
		return s
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, ahead)
	s.pending = make(chan *streamItem[T], ahead)
	s.jobs = make(chan *streamItem[T])
	s.wg.Add(1 + workers)
	go s.dispatch(start)
	for w := 0; w < workers; w++ {
		go s.work()
	}
	return s
}

func (s *Stream[T]) dispatch(i int64) {
	defer s.wg.Done()
	for ; ; i++ {
		it := &streamItem[T]{i: i, done: make(chan struct{})}
		select { // blocks when `ahead` items are pending: bounds read-ahead
		case s.pending <- it:
		case <-s.quit:
			return
		}
		select {
		case s.jobs <- it:
		case <-s.quit:
			return
		}
	}
}

func (s *Stream[T]) work() {
	defer s.wg.Done()
	for {
		select {
		case it := <-s.jobs:
			it.v, it.err = s.call(it.i)
			close(it.done)
		case <-s.quit:
			return
		}
	}
}

func (s *Stream[T]) call(i int64) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data.Stream: item %d: panic: %v", i, r)
		}
	}()
	return s.fn(i)
}

// Next returns the next item in index order, or make's error for that index
// (the stream then continues with the following index). After Close it
// returns ErrStreamClosed.
func (s *Stream[T]) Next() (T, error) {
	var zero T
	if s.closed.Load() {
		return zero, ErrStreamClosed
	}
	if s.sync {
		i := s.next
		s.next++
		return s.call(i)
	}
	var it *streamItem[T]
	select {
	case it = <-s.pending:
	case <-s.quit:
		return zero, ErrStreamClosed
	}
	select {
	case <-it.done:
		return it.v, it.err
	case <-s.quit:
		return zero, ErrStreamClosed
	}
}

// Close stops the stream's goroutines and waits for them to exit (a make
// call in progress is allowed to finish). It is idempotent.
func (s *Stream[T]) Close() {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		s.wg.Wait()
	})
}
