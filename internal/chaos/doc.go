// Package chaos holds the test that runs the fleet as separate processes of
// the real binary — API, orchestrator, two workers per pool — against real
// NATS, Temporal and MinIO, and breaks things while scans run.
package chaos
