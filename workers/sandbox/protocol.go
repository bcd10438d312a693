// Package sandbox runs a worker's scanners in warm child processes, one per
// worker slot, so that a hostile input parsed by a scanner cannot reach the
// worker's credentials, the network, or the rest of the filesystem, and
// cannot take the worker (and every other tenant's task on it) down.
//
// The parent (the worker) keeps every connection: it fetches and extracts
// the archive into the slot's tree directory as before, sends the child the
// task kind and the directory, and gets the findings back. The child is the
// same binary re-executed as a hidden subcommand (`tollgate sandbox-child`).
// It starts with an allow-listed environment, no inherited descriptors but
// its pipes, in its own user and network namespaces; it loads the scanners
// once, then restricts itself with Landlock (read-only access to its tree,
// the vulnerability DB, the SAST rules folder and any configured read roots; read-write to its own
// scratch directory; no TCP) and with memory and CPU-time rlimits, and
// serves tasks until it dies or its stdin closes.
//
// The protocol is newline-delimited JSON on the child's stdin and stdout
// (encoding/json's Encoder and Decoder frame it; the child moves its
// standard output to stderr so that nothing a library prints can corrupt
// it). The child's stderr goes to the parent's logger.
package sandbox

import (
	"time"

	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
)

// ChildCommand is the hidden subcommand that serves a sandbox child.
const ChildCommand = "sandbox-child"

// ChildOptions are what the parent tells a child first.
type ChildOptions struct {
	// DBDir is the vulnerability DB; Version is tollgate's version.
	DBDir   string `json:"db_dir,omitempty"`
	Version string `json:"version,omitempty"`
	// RulesDir is a folder of SAST rule files replacing the embedded ones
	// (empty: the embedded rules); the child may read it.
	RulesDir string `json:"rules_dir,omitempty"`
	// Kinds are the task kinds the child serves: it loads their scanners
	// only (empty: every kind the loader has).
	Kinds []string `json:"kinds,omitempty"`
	// Tree is the slot's tree directory: the parent extracts each task's
	// input under it. ReadRoots are more directories the child may read
	// (the embedded mode's scanned directory).
	Tree      string   `json:"tree"`
	ReadRoots []string `json:"read_roots,omitempty"`
	// Scratch is the child's private read-write directory (TMPDIR, HOME).
	Scratch string `json:"scratch"`
	// TaskMemory is the memory a task may use above the warm scanners,
	// in bytes; TaskCPU the CPU time one task may use.
	TaskMemory int64         `json:"task_memory"`
	TaskCPU    time.Duration `json:"task_cpu"`
	// LogLevel is the child's slog level (its stderr is the parent's log).
	LogLevel string `json:"log_level,omitempty"`
	// SecretFingerprintKey keys the secrets scanner's fingerprints. It
	// travels on the pipe, never in the environment or on a command line.
	SecretFingerprintKey []byte `json:"secret_fingerprint_key,omitempty"`
	// CPUProfile is where the child writes a CPU profile of the tasks it
	// serves (Config.CPUProfile); it is opened before the child restricts
	// itself.
	CPUProfile string `json:"cpu_profile,omitempty"`
	// OutDir, when set, is a directory (under Scratch) where the child
	// writes a task's output documents (SBOMs), naming them in the
	// response instead of sending their bytes on the pipe: JSON's base64
	// of every SBOM cost the child and the parent more than the rest of
	// the protocol together. Empty sends them inline (a kernel without
	// openat2, which the parent needs to read them safely).
	OutDir string `json:"out_dir,omitempty"`
}

// ready is the child's answer to its options: loaded and restricted, or why
// not. Isolation says which restrictions are in force.
type ready struct {
	Error     string    `json:"error,omitempty"`
	Isolation Isolation `json:"isolation"`
}

// Isolation says which of the sandbox's restrictions a child runs under.
type Isolation struct {
	// Landlock is the Landlock ABI the child restricted itself with (0:
	// none, reads outside the tree are not prevented).
	Landlock int `json:"landlock"`
	// Network says the child has its own network namespace.
	Network bool `json:"network"`
	// UserNS says the child runs in its own user namespace (it cannot raise
	// its own limits).
	UserNS bool `json:"user_ns"`
}

// request is one task for the child. The task token (a credential to the
// activity) is never sent.
type request struct {
	Task tasks.Task `json:"task"`
	Dir  string     `json:"dir"`
}

// Classes of a child's error.
const (
	classFailed   = ""          // the scanner failed; retry as any failure
	classBadInput = "bad_input" // the scanner says the input is bad
	classRefused  = "refused"   // the sandbox refused the scanner an operation
)

// response is the child's answer to a request.
type response struct {
	Output workers.Output `json:"output"`
	// Files are output documents the child wrote to OutDir; the parent
	// reads them into Output.Files.
	Files []fileRef `json:"files,omitempty"`
	Error string    `json:"error,omitempty"`
	Class string    `json:"class,omitempty"`
}

// Exit codes a child ends with when a limit stops it.
const (
	exitCPU    = 66
	exitMemory = 67
)

// fileRef names one output document in the child's OutDir.
type fileRef struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	// File is the document's base name in OutDir (the parent accepts
	// nothing else).
	File string `json:"file"`
}
