package testdb

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Cluster is a PostgreSQL server of a test's own (initdb, pg_ctl) on a free
// port in a temporary directory, for tests that stop and start the server:
// never the shared one other tests use.
type Cluster struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// asPostgres runs the server's commands as the postgres user: the server
	// refuses to run as root.
	asPostgres bool
}

// PGBin is the directory of the newest PostgreSQL server binaries installed
// (Debian's /usr/lib/postgresql/N/bin), or "" if there is none.
func PGBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// NewCluster initialises and starts a private cluster (trust
// authentication, user postgres, no fsync: a test's data need not survive
// a power cut); it is stopped and removed when the test ends. Without the
// server binaries the test is skipped, or fails under CI=true.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := PGBin()
	if bin == "" {
		unavailable(t, fmt.Errorf("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"))
	}
	c := &Cluster{t: t, bin: bin, asPostgres: os.Geteuid() == 0}
	// A directory of its own under /tmp (t.TempDir's parents are private to
	// this user, and the server may run as another).
	dir, err := os.MkdirTemp("", "console-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c.dir = dir
	if c.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user for a private cluster: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.port = freePort(t)
	c.run("initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale", "C")
	c.Start()
	t.Cleanup(func() {
		args := []string{"-D", c.data(), "stop", "-m", "immediate"}
		if c.asPostgres {
			args = append([]string{"-u", "postgres", "--", filepath.Join(c.bin, "pg_ctl")}, args...)
			_ = exec.Command("runuser", args...).Run() // already stopped is fine
			return
		}
		_ = exec.Command(filepath.Join(c.bin, "pg_ctl"), args...).Run()
	})
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// URL is the connection URL of a database on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=100", c.port, c.dir)
	c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "server.log"), "-o", opts)
}

// Stop shuts the server down the way a restart does ("fast": open
// connections are ended, in-flight transactions rolled back).
func (c *Cluster) Stop() {
	c.t.Helper()
	c.pgctl("stop", "-w", "-m", "fast")
}

// CreateDatabase creates an empty database and returns its URL.
func (c *Cluster) CreateDatabase(name string) string {
	c.t.Helper()
	c.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres", name)
	return c.URL(name)
}

func (c *Cluster) pgctl(args ...string) {
	c.t.Helper()
	c.run("pg_ctl", append([]string{"-D", c.data()}, args...)...)
}

func (c *Cluster) run(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, name)}, args...)...)
	}
	cmd.Dir = c.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, log)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
