// The Go code generated from hammer's protos, importable by clients without
// hammer's server dependencies. Its tools are the protoc plugins, pinned at
// the versions of the runtime libraries the generated code links against.
module github.com/hammer-webhooks/hammer/proto

go 1.26.0

tool (
	connectrpc.com/connect/cmd/protoc-gen-connect-go
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	connectrpc.com/connect v1.21.1
	google.golang.org/protobuf v1.36.12
)
