package stack

import (
	"bufio"
	"log/slog"
	"os"
	"os/exec"
)

// startLogged starts cmd with its stdout and stderr on one pipe: each line
// is logged at debug as name's and kept in tail for error messages. Our
// side of the pipe's write end is closed after the start, so the reader
// sees EOF when the server exits.
func (c *child) startLogged(cmd *exec.Cmd, logger *slog.Logger, name string, tail *lastLines) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := c.start(cmd); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pw.Close()
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			tail.add(sc.Text())
			logger.Debug(name, "line", sc.Text())
		}
	}()
	return nil
}

// hasExited says whether the process has ended.
func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}
