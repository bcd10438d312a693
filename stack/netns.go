package stack

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// ErrNoNetns is a node to isolate on a machine that cannot: network
// namespaces need root and iproute2's ip.
var ErrNoNetns = errors.New("network namespaces unavailable: isolating a node needs root and iproute2's ip")

// netns is a network namespace of its own for one server, joined to the
// root namespace by a veth pair on a /30: the host side (hostAddr, .1) in
// the root namespace, the node side (nodeAddr, .2) in the namespace, whose
// default route goes through the host side.
//
// Its traffic never leaves the machine while the pair exists: the root
// namespace routes the /30 to the host side, and the namespace has no
// other link. A cut takes the node side down (see cut).
type netns struct {
	name               string // the namespace's, for `ip netns`
	hostIf, nodeIf     string // the veth pair's ends
	hostAddr, nodeAddr string
}

// netnsAvailable is nil when this process can make network namespaces,
// else an error wrapping ErrNoNetns that says why not.
func netnsAvailable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (uid %d)", ErrNoNetns, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: %w", ErrNoNetns, err)
	}
	return nil
}

// netnsPlan names the namespaces of one cluster: a random tag, so that
// clusters running at once (a test beside a load test) do not share a
// name, and a random /24 of 10.200.0.0-10.249.255.0 that no interface of
// this machine is on (another cluster's veths included), one /30 of it a
// namespace.
type netnsPlan struct {
	tag    string // 6 hex digits
	subnet [3]byte
}

func newNetnsPlan() (netnsPlan, error) {
	used, err := net.InterfaceAddrs()
	if err != nil {
		return netnsPlan{}, fmt.Errorf("list this machine's addresses: %w", err)
	}
	for range 64 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return netnsPlan{}, err
		}
		r := binary.BigEndian.Uint64(b[:])
		p := netnsPlan{tag: fmt.Sprintf("%06x", r&0xffffff), subnet: [3]byte{10, byte(200 + (r>>24)%50), byte(r >> 32)}}
		_, mine, _ := net.ParseCIDR(fmt.Sprintf("%d.%d.%d.0/24", p.subnet[0], p.subnet[1], p.subnet[2]))
		free := true
		for _, a := range used {
			if n, ok := a.(*net.IPNet); ok && (mine.Contains(n.IP) || n.Contains(mine.IP)) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
	}
	return netnsPlan{}, errors.New("no free /24 in 10.200.0.0-10.249.255.0 for network namespaces")
}

// namespace is the i-th (from 0, at most 63) namespace of the plan, for
// node: tg<tag>-<node>, veths tg<tag><node>h and tg<tag><node>n.
func (p netnsPlan) namespace(i int, node string) (*netns, error) {
	ns := &netns{
		name:     "tg" + p.tag + "-" + node,
		hostIf:   "tg" + p.tag + node + "h",
		nodeIf:   "tg" + p.tag + node + "n",
		hostAddr: fmt.Sprintf("%d.%d.%d.%d", p.subnet[0], p.subnet[1], p.subnet[2], 4*i+1),
		nodeAddr: fmt.Sprintf("%d.%d.%d.%d", p.subnet[0], p.subnet[1], p.subnet[2], 4*i+2),
	}
	if i < 0 || i > 63 {
		return nil, fmt.Errorf("network namespace for %s: %d namespaces, at most 64 a cluster", node, i+1)
	}
	if len(ns.hostIf) > 15 { // IFNAMSIZ-1
		return nil, fmt.Errorf("network namespace for %q: interface name %q longer than 15 bytes", node, ns.hostIf)
	}
	return ns, nil
}

// create makes the namespace and its veth pair, addressed and up. What
// it made is removed again when a step fails.
func (ns *netns) create(ctx context.Context) error {
	if err := ip(ctx, "netns", "add", ns.name); err != nil {
		// Root without CAP_SYS_ADMIN (a container's) fails here.
		return fmt.Errorf("create network namespace %s: %w: %w", ns.name, ErrNoNetns, err)
	}
	steps := [][]string{
		{"link", "add", ns.hostIf, "type", "veth", "peer", "name", ns.nodeIf},
		{"link", "set", ns.nodeIf, "netns", ns.name},
		{"addr", "add", ns.hostAddr + "/30", "dev", ns.hostIf},
		{"link", "set", ns.hostIf, "up"},
		{"-n", ns.name, "addr", "add", ns.nodeAddr + "/30", "dev", ns.nodeIf},
		{"-n", ns.name, "link", "set", "lo", "up"},
		{"-n", ns.name, "link", "set", ns.nodeIf, "up"},
		{"-n", ns.name, "route", "add", "default", "via", ns.hostAddr},
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			ns.remove(context.WithoutCancel(ctx))
			return fmt.Errorf("create network namespace %s: %w", ns.name, err)
		}
	}
	return nil
}

// remove deletes the namespace, and with it the veth pair (deleting
// either end deletes both); the host end is deleted too in case it never
// got its peer into the namespace.
func (ns *netns) remove(ctx context.Context) error {
	var errs []error
	if err := ip(ctx, "netns", "delete", ns.name); err != nil {
		errs = append(errs, err)
	}
	if _, err := net.InterfaceByName(ns.hostIf); err == nil {
		if err := ip(ctx, "link", "delete", ns.hostIf); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove network namespace %s: %w", ns.name, err)
	}
	return nil
}

// cut takes the node side of the veth pair down, inside the namespace:
// the node loses its address's routes and its default route, so it can
// send nothing (ENETUNREACH), and what the root namespace sends it is
// dropped on the host side, which has lost its carrier. Established TCP
// connections are not closed: they stall, as across a pulled cable, until
// a ping or a write deadline gives up on them; new ones time out. Taking
// the host side down instead would be worse: the root namespace would
// lose its route to the /30 and send the node's traffic to its default
// gateway, off the machine.
func (ns *netns) cut(ctx context.Context) error {
	if err := ip(ctx, "-n", ns.name, "link", "set", ns.nodeIf, "down"); err != nil {
		return fmt.Errorf("cut network namespace %s: %w", ns.name, err)
	}
	return nil
}

// heal undoes cut: the node side up again, and its default route back
// (the kernel removed it with the link).
func (ns *netns) heal(ctx context.Context) error {
	for _, args := range [][]string{
		{"-n", ns.name, "link", "set", ns.nodeIf, "up"},
		{"-n", ns.name, "route", "replace", "default", "via", ns.hostAddr},
	} {
		if err := ip(ctx, args...); err != nil {
			return fmt.Errorf("heal network namespace %s: %w", ns.name, err)
		}
	}
	return nil
}

// command is argv run inside the namespace: `ip netns exec` execs it, so
// the process it starts is argv's, with argv's pid.
func (ns *netns) command(argv []string) []string {
	return append([]string{"ip", "netns", "exec", ns.name}, argv...)
}

// ip runs `ip args...`.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ipForwarding says whether the root namespace forwards IPv4 between
// interfaces: two isolated nodes reach each other only through it.
func ipForwarding() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
