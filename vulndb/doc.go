// Package vulndb builds, fetches and describes the vulnerability database tollgate
// matches packages against. The database is in Trivy's format (trivy-db schema 2: a
// bbolt file trivy.db plus metadata.json in one directory), so trivy's own language
// detector reads it unchanged.
//
//   - ImportOSV builds a database from OSV records (npm, PyPI, Go and Maven), for
//     air-gapped sites and for tests.
//   - Update fetches the official Trivy DB from an OCI registry or a mirror of it.
//   - ReadInfo says what database a directory holds.
//
// Both ImportOSV and Update build the new database in a staging directory next to the
// target and rename it into place, so a failure never leaves a half-written database.
// Neither touches trivy-db's process-wide handle (db.Init): a scanner in the same
// process opens the result with db.Init afterwards, closing any handle it had first.
package vulndb
