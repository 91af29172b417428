module github.com/omnimember/omnimember/functions/ingest

go 1.26.8

require (
	github.com/omnimember/omnimember/events v0.0.0
	github.com/omnimember/omnimember/shared v0.0.0
)

replace (
	github.com/omnimember/omnimember/events => ../../events
	github.com/omnimember/omnimember/shared => ../../shared
)
