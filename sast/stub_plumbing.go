// Package sast finds code weaknesses (SAST) in JavaScript, TypeScript,
// Python and Go with tree-sitter.
//
// This file is a stand-in with the engine's API (issue 13, the common brief)
// so that the scan path can be wired before the engine lands: it loads no
// rule and finds nothing. The lead deletes it when the real engine is
// merged.
package sast

import (
	"context"
	"log/slog"
	"time"

	"github.com/tollgate/tollgate/report"
)

// Options configure an Engine.
type Options struct {
	RulesDir     string        // a folder of rule files replacing the embedded ones ("" = embedded)
	MaxFileBytes int64         // files larger are skipped as too_large (0 = default, 512 KiB)
	ParseTimeout time.Duration // per-file parse+match deadline (0 = default, 2s)
	Logger       *slog.Logger
}

// Engine holds the compiled rules; safe for concurrent Scans.
type Engine struct{}

// New loads and compiles every rule once.
func New(opts Options) (*Engine, error) { return &Engine{}, nil }

// Scan walks dir and returns the weaknesses found and what was read.
func (e *Engine) Scan(ctx context.Context, dir string) ([]report.Weakness, report.CodeScan, error) {
	return nil, report.CodeScan{}, nil
}

// ScanFile scans one file's source; path is relative.
func (e *Engine) ScanFile(ctx context.Context, path string, src []byte) ([]report.Weakness, error) {
	return nil, nil
}
