// Package version holds what the build stamps into the binaries (through
// -ldflags -X), for hammer version and the User-Agent of deliveries.
package version

var (
	// Version is the release, or "dev" for an unstamped build.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
)
