package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoPostgres is returned when no PostgreSQL server binaries can be found.
var ErrNoPostgres = errors.New("postgresql not found: `apt-get install postgresql` (initdb and postgres on PATH or in /usr/lib/postgresql/*/bin), or set TOLLGATE_POSTGRES_BIN to their directory")

// PostgresOptions configure a throwaway PostgreSQL cluster run as a child
// process.
type PostgresOptions struct {
	// BinDir holds initdb and postgres (default: $TOLLGATE_POSTGRES_BIN, then
	// PATH, then the newest /usr/lib/postgresql/*/bin).
	BinDir string
	// DataDir holds the cluster (required). A directory without one is made
	// into one with initdb; one that holds a cluster started here before is
	// started again, with the credentials it was made with.
	DataDir string
	// Port on 127.0.0.1 (default: a free port). The unix socket is in
	// DataDir, unless its path would be too long for one (TCP only then).
	Port int
	// User and Password are the superuser made by initdb, who logs in with a
	// password over TCP (default "tollgate" and a random password). Ignored
	// for a DataDir that already holds a cluster.
	User     string
	Password string
	// RunAs is the unprivileged account the server runs as when this process
	// is root, as PostgreSQL refuses to run as root (default "postgres").
	// DataDir's parents must let it through. Not root: the server runs as
	// this process's user.
	RunAs string
	// StartTimeout bounds the wait for the server to accept connections
	// (default 60s).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// PostgresConn is how to reach a PostgreSQL server over TCP.
type PostgresConn struct {
	Host     string
	Port     int
	User     string
	Password string
}

// Addr is the server's host:port.
func (c PostgresConn) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// URL is a postgres:// connection URL for database db, without TLS.
func (c PostgresConn) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(c.User, c.Password), Host: c.Addr(), Path: "/" + db,
		RawQuery: "sslmode=disable"}
	return u.String()
}

// Postgres is a running PostgreSQL cluster.
type Postgres struct {
	PostgresConn
	// DataDir holds the cluster and the unix socket.
	DataDir string

	postgres string // the server binary
	cred     *syscall.Credential
	logger   *slog.Logger
	timeout  time.Duration
	// restartable's Pid is the postmaster's; the backends are its children.
	restartable
}

// postgresCredentials is where a cluster made here keeps the superuser's
// name and password, so that a restart on the same DataDir can log in.
const postgresCredentials = "tollgate-credentials"

// FindPostgres returns the directory holding initdb and postgres: explicit,
// else $TOLLGATE_POSTGRES_BIN, else the directory of the `postgres` on PATH
// (links resolved) when initdb is there too, else the newest
// /usr/lib/postgresql/*/bin.
func FindPostgres(explicit string) (string, error) {
	if dir := cmp.Or(explicit, os.Getenv("TOLLGATE_POSTGRES_BIN")); dir != "" {
		for _, name := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return "", fmt.Errorf("postgresql binaries in %q: %w", dir, err)
			}
		}
		return dir, nil
	}
	var dirs []string
	if p, err := exec.LookPath("postgres"); err == nil {
		// Debian's /usr/local/bin links: resolve them to the directory
		// where initdb finds the postgres beside it.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int { return cmp.Compare(pgMajor(b), pgMajor(a)) })
	for _, dir := range append(dirs, versions...) {
		_, errI := os.Stat(filepath.Join(dir, "initdb"))
		_, errP := os.Stat(filepath.Join(dir, "postgres"))
		if errI == nil && errP == nil {
			return dir, nil
		}
	}
	return "", ErrNoPostgres
}

// pgMajor is the major version in /usr/lib/postgresql/<major>/bin.
func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres starts a PostgreSQL cluster on 127.0.0.1 only, made with
// initdb in DataDir unless it is there already, and waits until it accepts
// connections.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	if opts.DataDir == "" {
		return nil, errors.New("start postgresql: no data dir")
	}
	binDir, err := FindPostgres(opts.BinDir)
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start postgresql in %q: %w", opts.DataDir, err)
	}
	p := &Postgres{
		PostgresConn: PostgresConn{Host: "127.0.0.1", Port: opts.Port},
		DataDir:      dataDir,
		postgres:     filepath.Join(binDir, "postgres"),
		logger:       cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)),
		timeout:      cmp.Or(opts.StartTimeout, 60*time.Second),
	}
	if p.cred, err = postgresCredential(cmp.Or(opts.RunAs, "postgres")); err != nil {
		return nil, fmt.Errorf("start postgresql in %q: %w", dataDir, err)
	}
	if p.Port == 0 {
		if p.Port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("start postgresql in %q: %w", dataDir, err)
		}
	}
	if err := p.initCluster(ctx, binDir, opts); err != nil {
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// postgresCredential is the account to run the server as: runAs when this
// process is root, else nil (this process's own user).
func postgresCredential(runAs string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(runAs)
	if err != nil {
		return nil, fmt.Errorf("look up user %q to run the server as (PostgreSQL refuses root): %w", runAs, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", runAs, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w", runAs, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// initCluster runs initdb in an empty or missing DataDir, and reads the
// credentials of one that holds a cluster made here before.
func (p *Postgres) initCluster(ctx context.Context, binDir string, opts PostgresOptions) error {
	credFile := filepath.Join(p.DataDir, postgresCredentials)
	if _, err := os.Stat(filepath.Join(p.DataDir, "PG_VERSION")); err == nil {
		b, err := os.ReadFile(credFile)
		if err != nil {
			return fmt.Errorf("start postgresql: reuse the cluster in %q: %w", p.DataDir, err)
		}
		name, pw, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if !ok {
			return fmt.Errorf("start postgresql: reuse the cluster in %q: bad %s", p.DataDir, postgresCredentials)
		}
		p.User, p.Password = name, pw
		return nil
	}
	p.User = cmp.Or(opts.User, "tollgate")
	p.Password = cmp.Or(opts.Password, randomHex(16))
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return fmt.Errorf("start postgresql: create data dir %q: %w", p.DataDir, err)
	}
	if err := p.own(p.DataDir); err != nil {
		return err
	}
	if err := p.checkReachable(p.DataDir); err != nil {
		return err
	}
	// initdb reads the password from a file; it must not be in DataDir,
	// which initdb wants empty.
	pwFile, err := os.CreateTemp("", "tollgate-pg-pw-*")
	if err != nil {
		return fmt.Errorf("start postgresql: %w", err)
	}
	defer os.Remove(pwFile.Name())
	_, werr := pwFile.WriteString(p.Password + "\n")
	if err := errors.Join(werr, pwFile.Close(), p.own(pwFile.Name())); err != nil {
		return fmt.Errorf("start postgresql: write the password file: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"--pgdata", p.DataDir, "--username", p.User, "--pwfile", pwFile.Name(),
		// Passwords over TCP; the socket, in DataDir (0700), is the run-as
		// user's alone.
		"--auth-host", "scram-sha-256", "--auth-local", "trust",
		"--encoding", "UTF8", "--locale", "C")
	cmd.Env, cmd.Dir = postgresEnv(), p.DataDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start postgresql: initdb %q: %w\n%s", p.DataDir, err, out)
	}
	if err := os.WriteFile(credFile, []byte(p.User+"\n"+p.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("start postgresql: %w", err)
	}
	return p.own(credFile)
}

// own gives path to the account the server runs as.
func (p *Postgres) own(path string) error {
	if p.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
		return fmt.Errorf("start postgresql: give %q to uid %d: %w", path, p.cred.Uid, err)
	}
	return nil
}

// checkReachable tells, before initdb fails less clearly, when a parent of
// dir does not let the run-as account through (t.TempDir's are 0700).
func (p *Postgres) checkReachable(dir string) error {
	if p.cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("start postgresql: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		var through fs.FileMode = 0o001
		switch {
		case ok && st.Uid == p.cred.Uid:
			through = 0o100
		case ok && st.Gid == p.cred.Gid:
			through = 0o010
		}
		if fi.Mode().Perm()&through == 0 {
			return fmt.Errorf("start postgresql in %q: uid %d cannot enter %q (mode %v): let it through (chmod o+x) or pick another data dir",
				dir, p.cred.Uid, d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func postgresEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "LANG=C"}
}

// socketDir is DataDir, or "" (no unix socket) when the socket's path,
// DataDir/.s.PGSQL.<port>, would not fit a sockaddr_un (107 bytes).
func (p *Postgres) socketDir() string {
	if len(filepath.Join(p.DataDir, ".s.PGSQL."+strconv.Itoa(p.Port))) > 107 {
		return ""
	}
	return p.DataDir
}

// start runs the postmaster on the cluster and waits for it to accept
// connections.
func (p *Postgres) start(ctx context.Context) error {
	cmd := exec.Command(p.postgres, "-D", p.DataDir,
		"-c", "listen_addresses="+p.Host, "-p", strconv.Itoa(p.Port),
		"-c", "unix_socket_directories="+p.socketDir(),
		"-c", "logging_collector=off", "-c", "log_destination=stderr", "-c", "lc_messages=C",
		// Temporal's services each keep pools to both of its databases.
		"-c", "max_connections=200")
	cmd.Env, cmd.Dir = postgresEnv(), p.DataDir
	// Go sets the parent-death signal after it switches to the credential,
	// so the server still dies with this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	c, tail := &child{}, &lastLines{}
	if err := c.startLogged(cmd, p.logger, "postgresql", tail); err != nil {
		return fmt.Errorf("start postgresql %q: %w", p.postgres, err)
	}
	p.set(c)
	if err := p.waitReady(ctx, c); err != nil {
		c.stopWith(syscall.SIGQUIT, 10*time.Second)
		return fmt.Errorf("start postgresql on %s in %q: %w%s", p.Addr(), p.DataDir, err, tail.String())
	}
	p.logger.DebugContext(ctx, "postgresql ready", "addr", p.Addr(), "data_dir", p.DataDir, "pid", cmd.Process.Pid)
	return nil
}

// waitReady waits until the postmaster c says, in its lock file
// postmaster.pid, that it accepts connections: the file's first line is its
// pid (not a crashed one's), and its eighth its state, "ready".
func (p *Postgres) waitReady(ctx context.Context, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	lockFile := filepath.Join(p.DataDir, "postmaster.pid")
	delay := 10 * time.Millisecond
	for {
		b, err := os.ReadFile(lockFile)
		lines := strings.Split(string(b), "\n")
		if err == nil && len(lines) >= 8 && lines[0] == strconv.Itoa(c.Pid()) && strings.TrimSpace(lines[7]) == "ready" {
			return nil
		}
		select {
		case <-c.exited:
			return c.exitErr()
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", p.timeout, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// Stop shuts the server down cleanly: PostgreSQL's fast shutdown (SIGINT),
// which ends the sessions and checkpoints, then SIGKILL after a minute.
func (p *Postgres) Stop() { p.stopWith(syscall.SIGINT, time.Minute) }

// Kill stops the server at once: PostgreSQL's immediate shutdown (SIGQUIT),
// no checkpoint and every session cut, so the next start replays the WAL as
// after a crash. (A SIGKILL of the postmaster alone would leave its backends
// running until they noticed, and a new postmaster refuses to start beside
// them.) SIGKILL after ten seconds.
func (p *Postgres) Kill() { p.stopWith(syscall.SIGQUIT, 10*time.Second) }

// Restart stops the server cleanly and starts it again on the same data
// directory and port. After a Kill it only starts it.
func (p *Postgres) Restart(ctx context.Context) error {
	p.Stop()
	return p.start(ctx)
}
