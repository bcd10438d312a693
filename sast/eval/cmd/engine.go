package main

import (
	"fmt"
	"log/slog"

	"github.com/tollgate/tollgate/sast"
	"github.com/tollgate/tollgate/sast/eval"
)

var _ eval.Scanner = (*sast.Engine)(nil)

func newScanner(log *slog.Logger, rulesDir string) (eval.Scanner, error) {
	e, err := sast.New(sast.Options{RulesDir: rulesDir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("load SAST rules %q: %w", rulesDir, err)
	}
	return e, nil
}
