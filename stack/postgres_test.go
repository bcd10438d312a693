package stack

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// startTestPostgres starts a throwaway cluster in the test's temp dir, or
// skips the test when PostgreSQL is not installed.
func startTestPostgres(t *testing.T) (*Postgres, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that starts PostgreSQL")
	}
	if _, err := FindPostgres(""); errors.Is(err, ErrNoPostgres) {
		t.Skip(err)
	}
	// t.TempDir's folders are 0700: let the unprivileged server through.
	base := t.TempDir()
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(base, "pg")
	pg, err := StartPostgres(context.Background(), PostgresOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	return pg, dataDir
}

// psql runs one SQL statement over TCP with the cluster's password, and
// returns its unaligned output. It skips the test without psql.
func psql(t *testing.T, pg PostgresConn, sql string) string {
	t.Helper()
	bin, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("no psql to check the server with:", err)
	}
	cmd := exec.Command(bin, "--no-psqlrc", "-At", "-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", pg.User, "-d", "postgres", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pg.Password, "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q on %s: %v\n%s", sql, pg.Addr(), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPostgresKeepsDataAcrossRestartsAndCrashes: the cluster takes the
// generated password over TCP, and what it committed survives a clean
// restart, an immediate shutdown (a crash: the WAL is replayed) and a new
// StartPostgres on the same data dir, which logs in with the same
// credentials on a port of its own.
func TestPostgresKeepsDataAcrossRestartsAndCrashes(t *testing.T) {
	pg, dataDir := startTestPostgres(t)
	ctx := context.Background()
	if got := psql(t, pg.PostgresConn, "select current_user"); got != pg.User {
		t.Fatalf("current_user = %q, want %q", got, pg.User)
	}
	psql(t, pg.PostgresConn, "create table drill (n int); insert into drill values (1)")
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	psql(t, pg.PostgresConn, "insert into drill values (2)")
	pid := pg.Pid()
	pg.Kill()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal("start after a crash:", err)
	}
	if pg.Pid() == pid || pg.Pid() == 0 {
		t.Errorf("pid after the restart = %d, was %d", pg.Pid(), pid)
	}
	if got := psql(t, pg.PostgresConn, "select string_agg(n::text, ',' order by n) from drill"); got != "1,2" {
		t.Errorf("rows after a crash = %q, want 1,2", got)
	}
	pg.Stop()

	again, err := StartPostgres(ctx, PostgresOptions{DataDir: dataDir, Password: "ignored"})
	if err != nil {
		t.Fatal("start on the same data dir:", err)
	}
	defer again.Stop()
	if again.User != pg.User || again.Password != pg.Password {
		t.Errorf("credentials on the same data dir = %s/%s, want %s/%s", again.User, again.Password, pg.User, pg.Password)
	}
	if got := psql(t, again.PostgresConn, "select count(*) from drill"); got != "2" {
		t.Errorf("rows on the same data dir = %q, want 2", got)
	}
	if os.Geteuid() == 0 {
		if got := psql(t, again.PostgresConn, "select usesuper from pg_user where usename = current_user"); got != "t" {
			t.Errorf("superuser = %q", got)
		}
	}
}

// TestPostgresRefusesAPasswordlessLogin: TCP logins need the password.
func TestPostgresRefusesAPasswordlessLogin(t *testing.T) {
	pg, _ := startTestPostgres(t)
	bin, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("no psql:", err)
	}
	cmd := exec.Command(bin, "--no-psqlrc", "-At", "-w", "-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", pg.User, "-d", "postgres", "-c", "select 1")
	cmd.Env = append(os.Environ(), "PGPASSWORD=wrong")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "password authentication failed") {
		t.Errorf("login with a wrong password: err %v, output %s", err, out)
	}
}
