//go:build tools

// Package tools pins the upstream commands tests/tools/build.sh builds; nothing imports it.
package tools

import (
	_ "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno"
	_ "github.com/kyverno/kyverno/cmd/kyverno"
)
