//go:build tools

// Package tools pins the upstream commands tests/tools/build.sh builds; nothing imports it.
package tools

import (
	_ "github.com/google/go-containerregistry/cmd/crane"
	_ "github.com/sigstore/cosign/v2/cmd/cosign"
)
