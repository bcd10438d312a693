package scanners

import "context"

// withValues returns ctx with values looked up in ctx first and then in
// values. Cancellation and deadlines come from ctx alone. It exists because
// syft keeps its (expensive) licence scanner only as a context value, and the
// scanner must outlive any one scan's context.
func withValues(ctx, values context.Context) context.Context {
	return valuesCtx{Context: ctx, values: values}
}

type valuesCtx struct {
	context.Context
	values context.Context
}

func (c valuesCtx) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}
