package apiserver

import (
	"context"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// A strategy's hooks are only ever called with objects of the strategy's own kind;
// these adapters let a strategy_<kind>.go write each hook over the kind's Go type T
// (prepareForCreate(func(..., svc *api.Service, ...) error)).

func prepareForCreate[T api.Object](fn func(s *Server, ctx context.Context, obj T, u *undo) error) func(*Server, context.Context, api.Object, *undo) error {
	return func(s *Server, ctx context.Context, obj api.Object, u *undo) error { return fn(s, ctx, obj.(T), u) }
}

func prepareForUpdate[T api.Object](fn func(cur, next T)) func(cur, next api.Object) {
	return func(cur, next api.Object) { fn(cur.(T), next.(T)) }
}

func beginUpdate[T api.Object](fn func(s *Server, ctx context.Context, cur, next T, u *undo) error) func(*Server, context.Context, api.Object, api.Object, *undo) error {
	return func(s *Server, ctx context.Context, cur, next api.Object, u *undo) error {
		return fn(s, ctx, cur.(T), next.(T), u)
	}
}

func afterUpdate[T api.Object](fn func(s *Server, ctx context.Context, before, after T)) func(*Server, context.Context, api.Object, api.Object) {
	return func(s *Server, ctx context.Context, before, after api.Object) { fn(s, ctx, before.(T), after.(T)) }
}

func gracePeriod[T api.Object](fn func(obj T, requested *int64) int64) func(api.Object, *int64) int64 {
	return func(obj api.Object, requested *int64) int64 { return fn(obj.(T), requested) }
}

func prepareForDelete[T api.Object](fn func(obj T, propagationPolicy string)) func(api.Object, string) {
	return func(obj api.Object, policy string) { fn(obj.(T), policy) }
}

func afterDelete[T api.Object](fn func(s *Server, ctx context.Context, obj T)) func(*Server, context.Context, api.Object) {
	return func(s *Server, ctx context.Context, obj api.Object) { fn(s, ctx, obj.(T)) }
}
