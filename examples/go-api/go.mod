module example.com/go-api

go 1.20

require (
	golang.org/x/text v0.3.7
	gopkg.in/yaml.v2 v2.2.2
)
