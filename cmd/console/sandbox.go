package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
)

// sandboxOptions are the flags of `console sandbox`.
type sandboxOptions struct {
	addr string
	dir  string
}

func bindSandboxFlags(fs *flag.FlagSet) *sandboxOptions {
	o := &sandboxOptions{}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8090", "address the sandbox listens on")
	fs.StringVar(&o.dir, "dir", "./sandbox", "directory for the sandbox's key files, sandbox.env and state")
	return o
}

func runSandbox(ctx context.Context, o sandboxOptions, logger *slog.Logger, out io.Writer) error {
	return errors.New("the sandbox is not available in this build yet")
}
