// Package control is the client side of tollgate's workflows: it starts,
// reviews and reads scans (ScanWorkflow), and watches releases, pushes
// health, freezes and rolls back apps (GuardWorkflow, RollbackWorkflow).
// The API, the orchestrator's guard activities and the embedded stack's
// local scans all act on the workflows through it, so that a workflow id,
// its start options, its memo and the way its status is read are written
// once.
//
// It talks to Temporal only; it holds no HTTP, no JSON shapes of the API
// and no workflow code.
package control
