module github.com/hammer-webhooks/hammer/deploy

go 1.26.0

replace github.com/hammer-webhooks/hammer/platform => ../platform

replace github.com/hammer-webhooks/hammer/sql => ../sql
