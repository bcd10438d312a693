package stack

import (
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/log"
)

// quietLogger drops the SDK's logs while probing a server that is starting.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}

var _ log.Logger = quietLogger{}

func describeNamespace(ns string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: ns}
}
