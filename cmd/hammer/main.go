// Command hammer runs hammer's services.
package main

import (
	"fmt"

	"github.com/hammer-webhooks/hammer/platform/version"
)

func main() {
	fmt.Println("hammer", version.Version)
}
