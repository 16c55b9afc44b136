module github.com/hammer-webhooks/hammer/services/deliverer

go 1.26.0

replace github.com/hammer-webhooks/hammer/platform => ../../platform

replace github.com/hammer-webhooks/hammer/sql => ../../sql

require github.com/stretchr/testify v1.12.1

require go.yaml.in/yaml/v3 v3.0.5 // indirect
