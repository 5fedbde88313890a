// Package harness is what compare's measuring tools share: child processes
// driven by lines over stdin and stdout, many connections from many
// loopback source addresses, and the process's own resource figures.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// StopTimeout is how long Child.Stop waits for a child to exit once its
// stdin is closed, before it kills it.
const StopTimeout = 20 * time.Second

// Child is a subprocess driven over its stdin and stdout, one line at a
// time. Closing its stdin tells it to exit.
type Child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, closed at EOF
	once  sync.Once
	err   error
}

// Start runs exe with args; the child's stderr is this process's.
func Start(exe string, args ...string) (*Child, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Child{cmd: cmd, stdin: in, lines: make(chan string, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c, nil
}

// Say sends the child one line.
func (c *Child) Say(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

// Expect returns the rest of the next line that starts with prefix. A line
// "error ..." from the child, its exit or ctx's end fail instead.
func (c *Child) Expect(ctx context.Context, prefix string) (string, error) {
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("exited while awaiting %q", strings.TrimSpace(prefix))
			}
			if msg, isErr := strings.CutPrefix(l, "error "); isErr {
				return "", errors.New(msg)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("awaiting %q: %w", strings.TrimSpace(prefix), ctx.Err())
		}
	}
}

// Stop closes the child's stdin, which makes it exit, and reaps it; a
// child still running StopTimeout later is killed.
func (c *Child) Stop() error {
	c.once.Do(func() {
		c.stdin.Close()
		exited := make(chan error, 1)
		go func() {
			for range c.lines { // keep its stdout flowing
			}
			exited <- c.cmd.Wait()
		}()
		t := time.NewTimer(StopTimeout)
		defer t.Stop()
		select {
		case c.err = <-exited:
		case <-t.C:
			c.cmd.Process.Kill()
			c.err = fmt.Errorf("still running %v after its stdin closed (killed: %v)", StopTimeout, <-exited)
		}
	})
	return c.err
}
