module github.com/hammer-webhooks/hammer/cmd/hammer

go 1.26.0

require github.com/hammer-webhooks/hammer/platform v0.0.0-00010101000000-000000000000

replace github.com/hammer-webhooks/hammer/platform => ../../platform

replace github.com/hammer-webhooks/hammer/sql => ../../sql

replace github.com/hammer-webhooks/hammer/services/api => ../../services/api

replace github.com/hammer-webhooks/hammer/services/fanout => ../../services/fanout

replace github.com/hammer-webhooks/hammer/services/deliverer => ../../services/deliverer

replace github.com/hammer-webhooks/hammer/services/recorder => ../../services/recorder
