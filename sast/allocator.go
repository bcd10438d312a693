package sast

/*
#include <stddef.h>

// Defined by go-tree-sitter's copy of the tree-sitter library; weak so
// that this package links on its own.
extern void ts_set_allocator(void *(*)(size_t), void *(*)(size_t, size_t), void *(*)(void *, size_t), void (*)(void *)) __attribute__((weak));

static int use_libc_allocator(void) {
	if (ts_set_allocator == NULL) {
		return 0;
	}
	ts_set_allocator(NULL, NULL, NULL, NULL);
	return 1;
}
*/
import "C"

import "sync"

// useLibcAllocator makes tree-sitter allocate with libc directly.
// go-tree-sitter v0.25.0 routes every allocation of the C library through
// a Go callback that calls C.malloc (so a Go program could swap the
// allocator): two cgo transitions per allocation, much of the parse time
// of a small file. Both paths end in libc malloc and free, so switching,
// even with trees alive, is safe.
var useLibcAllocator = sync.OnceValue(func() bool { return C.use_libc_allocator() == 1 })
