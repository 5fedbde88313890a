//go:build !unix

package main

import "time"

// processCPUTime is not measured here: the CPU figure stays at 0.
func processCPUTime() time.Duration { return 0 }
