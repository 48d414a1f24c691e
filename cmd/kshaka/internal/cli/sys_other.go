//go:build !unix

package cli

import (
	"errors"
	"os"
	"syscall"
)

func childProcAttr() *syscall.SysProcAttr { return nil }

func lockDir(string) (*os.File, error) {
	return nil, errors.New("kshaka local runs only on Unix systems")
}
