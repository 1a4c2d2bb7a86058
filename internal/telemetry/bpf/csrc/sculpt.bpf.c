// SPDX-License-Identifier: GPL-2.0
//
// sculpt's kernel-side telemetry: system calls by class, socket and pipe
// bytes per process (tgid), and the bytes each process sends into each
// channel (pipe, unix socket, loopback TCP flow) for the communication graph.
// User space (internal/telemetry/ebpf_linux_amd64.go) fills sys_class, reads
// the maps in batches each sweep and joins the channels.
//
// Every program is a BTF-typed raw tracepoint (tp_btf): raw_syscalls
// sys_enter/sys_exit, sock sock_send_length/sock_recv_length (Linux 6.3+)
// and sched_process_exit. No kprobes or fentry: kernels built without
// CONFIG_KPROBES or without fentry support (like Firecracker guests) run it.
//
// Kernel structs are declared by hand with CO-RE relocations
// (preserve_access_index): only the fields named here are used and their
// offsets come from the running kernel's BTF at load time.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef signed short __s16;
typedef signed int __s32;
typedef signed long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_LRU_PERCPU_HASH = 10,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

#define BPF_NOEXIST 1
#define BPF_F_NO_PREALLOC 1
#define BPF_LOCAL_STORAGE_GET_F_CREATE 1

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000

struct pt_regs {
	unsigned long di;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct files_struct *files;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	volatile unsigned char skc_state;
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct unix_address;

struct unix_sock {
	struct unix_address *addr;
	struct sock *peer;
} __attribute__((preserve_access_index));

// System-call classes; keep in step with the Go side (ebpf.go).
enum {
	CLASS_FILE = 0,
	CLASS_NET = 1,
	CLASS_IPC = 2,
	CLASS_MEM = 3,
	CLASS_SCHED = 4,
	CLASS_PROC = 5,
	CLASS_OTHER = 6,
	NUM_CLASSES = 7,
	// Markers resolved at entry from the first argument:
	MARK_FDREAD = 8,  // read family: the kind of the file behind fd
	MARK_SOCKIO = 9,  // socket calls on fd: unix -> IPC, others -> network
	MARK_SOCKET = 10, // socket(family, ...): AF_UNIX -> IPC, others -> network
	MARK_FDWRITE = 11 // write family: the kind of the file behind fd
};

#define IPPROTO_TCP 6

#define NUM_SYSCALLS 512

// sys_class maps x86_64 system-call numbers to a class or a marker; set by
// the loader before load (read-only afterwards, so lookups are plain loads).
volatile const __u8 sys_class[NUM_SYSCALLS];

// Per-process counters (summed over CPUs in user space).
struct proc_stats {
	__u64 sys[8];       // by class; sys[7] unused
	__u64 inet_tx;      // TCP + UDP bytes sent (all destinations)
	__u64 inet_rx;      // TCP + UDP bytes received
	__u64 loop_tx;      // of which to a loopback peer
	__u64 loop_rx;      // of which from a loopback peer
	__u64 unix_tx;      // unix socket bytes sent
	__u64 unix_rx;
	__u64 pipe_tx;      // pipe bytes written
	__u64 pipe_rx;      // pipe bytes read
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); // tgid
	__type(value, struct proc_stats);
} procs SEC(".maps");

enum {
	CHAN_PIPE = 1,
	CHAN_UNIX = 2,
	CHAN_TCP = 3,
};

// A channel is identified by its receiving end: the pipe, the receiving unix
// socket, or the direction of a loopback TCP flow (its 4-tuple, hashed). A
// writer adds tx under the receiving end's id; a reader adds rx under its own.
struct chan_key {
	__u32 tgid;
	__u32 kind;
	__u64 id;
};

struct chan_val {
	__u64 tx;
	__u64 rx;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct chan_key);
	__type(value, struct chan_val);
} chans SEC(".maps");

// Server-side request latency. A request is data reaching a connected TCP
// or unix stream socket (sock/sk_data_ready, in the softirq or the sender's
// context); the reply is the next send on that socket by the process owning
// it (sock/sock_send_length). Per socket the arrival time of the oldest
// unanswered request is kept; the reply closes it and adds the time between
// (queueing, wakeup, run-queue wait and service) to the sending process's
// histogram. Sockets on the client side of a connection are skipped: see
// sock_serves.
#define REQ_BUCKETS 89 // keep in step with reqBuckets (reqlat.go)
#define REQ_MIN_SHIFT 11 // bucket 0 is [0, 2^11 ns); then 4 per power of two
#define REQ_STALE_NS (60ULL * 1000000000ULL)

enum {
	ROLE_UNKNOWN = 0,
	ROLE_SERVER = 1,
	ROLE_CLIENT = 2,
};

struct req_sock {
	__u64 pending; // arrival time (ns, monotonic) of the oldest unanswered request; 0: none
	__u64 cookie;  // the socket's cookie: a socket reusing a closed one's memory has another
	__u32 role;    // ROLE_*: from the TCP handshake when seen
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); // struct sock *
	__type(value, struct req_sock);
} req_socks SEC(".maps");

// Per process (tgid): requests served, their summed latency, and the
// latency histogram (cumulative; user space takes differences per sweep).
struct req_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 buckets[REQ_BUCKETS];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); // tgid
	__type(value, struct req_hist);
} reqs SEC(".maps");

static const struct req_hist req_zero;

// A read or write on a pipe in flight: sys_enter notes the pipe, sys_exit
// adds the bytes the call returned. Per thread (task storage: no hashing,
// freed with the thread).
struct pending_io {
	__u64 pipe;
	__u32 write;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_io);
} pending SEC(".maps");

static __always_inline struct proc_stats *stats_for(__u32 tgid)
{
	struct proc_stats *st = bpf_map_lookup_elem(&procs, &tgid);
	if (st)
		return st;
	struct proc_stats zero = {};
	bpf_map_update_elem(&procs, &tgid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&procs, &tgid);
}

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

// fd_file returns the calling task's file at fd, or NULL. The task's fd
// table is walked with direct (BTF) loads; the array slot needs one probe
// read, and the file is cast back to a BTF pointer (read-only) so that its
// fields are direct loads too.
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	if (fd < 0 || fd >= fdt->max_fds)
		return 0;
	struct file **fds = fdt->fd;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return 0;
	return bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
}

static __always_inline int sock_class(struct file *f)
{
	struct socket *sock = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	return sock->sk->__sk_common.skc_family == AF_UNIX ? CLASS_IPC : CLASS_NET;
}

static __always_inline int resolve_class(__u8 c, struct pt_regs *regs)
{
	if (c < NUM_CLASSES)
		return c;
	long arg0 = regs->di;
	if (c == MARK_SOCKET)
		return arg0 == AF_UNIX ? CLASS_IPC : CLASS_NET;
	struct file *f = fd_file(arg0);
	if (!f)
		return c == MARK_SOCKIO ? CLASS_NET : CLASS_FILE;
	if (c == MARK_SOCKIO)
		return sock_class(f);
	unsigned short mode = f->f_inode->i_mode & S_IFMT;
	if (mode == S_IFIFO) {
		struct pending_io *io = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
							     BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (io) {
			io->pipe = (__u64)f->private_data;
			io->write = c == MARK_FDWRITE;
		}
		return CLASS_IPC;
	}
	if (mode == S_IFSOCK)
		return sock_class(f);
	return CLASS_FILE;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	int class = CLASS_OTHER;
	if (id >= 0 && id < NUM_SYSCALLS)
		class = resolve_class(sys_class[id], regs);
	struct proc_stats *st = stats_for(current_tgid());
	if (!st)
		return 0;
	// Per-CPU values: no atomics needed.
	if (class >= 0 && class < NUM_CLASSES)
		st->sys[class]++;
	return 0;
}

static __always_inline void chan_add(__u32 kind, __u64 id, __u64 tx, __u64 rx);

// sys_exit completes a pipe read or write noted by sys_enter.
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;
	if (id < 0 || id >= NUM_SYSCALLS)
		return 0;
	__u8 c = sys_class[id];
	if (c != MARK_FDREAD && c != MARK_FDWRITE)
		return 0;
	struct pending_io *io = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
	if (!io || !io->pipe)
		return 0;
	__u64 pipe = io->pipe;
	bool write = io->write;
	io->pipe = 0;
	if (ret <= 0)
		return 0;
	struct proc_stats *st = stats_for(current_tgid());
	if (st) {
		if (write)
			st->pipe_tx += ret;
		else
			st->pipe_rx += ret;
	}
	chan_add(CHAN_PIPE, pipe, write ? ret : 0, write ? 0 : ret);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p)
{
	if (p->pid != p->tgid)
		return 0; // a thread; the process lives on
	__u32 tgid = p->tgid;
	bpf_map_delete_elem(&procs, &tgid);
	bpf_map_delete_elem(&reqs, &tgid);
	return 0;
}

static __always_inline void chan_add(__u32 kind, __u64 id, __u64 tx, __u64 rx)
{
	if (!id)
		return;
	struct chan_key k = {.tgid = current_tgid(), .kind = kind, .id = id};
	struct chan_val *v = bpf_map_lookup_elem(&chans, &k);
	if (!v) {
		struct chan_val zero = {};
		bpf_map_update_elem(&chans, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&chans, &k);
		if (!v)
			return;
	}
	if (tx)
		__sync_fetch_and_add(&v->tx, tx);
	if (rx)
		__sync_fetch_and_add(&v->rx, rx);
}

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

// inet_account adds n bytes to the caller's counters and, for a loopback TCP
// flow, to the channel of that flow's direction. tx says the caller sends.
static __always_inline void inet_account(struct sock *sk, __s64 n, bool tx, bool tcp)
{
	struct proc_stats *st = stats_for(current_tgid());
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u64 local, remote;
	bool loop = false;
	if (family == AF_INET) {
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		loop = (d & 0xff) == 127 || (d != 0 && d == s);
		local = s;
		remote = d;
	} else if (family == AF_INET6) {
		struct in6_addr d6 = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);
		struct in6_addr s6 = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
		__u32 *d = d6.in6_u.u6_addr32, *s = s6.in6_u.u6_addr32;
		bool v4mapped = d[0] == 0 && d[1] == 0 && d[2] == 0xffff0000U;
		bool lo6 = d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0x01000000U;
		bool same = (d[0] | d[1] | d[2] | d[3]) != 0 &&
			    d[0] == s[0] && d[1] == s[1] && d[2] == s[2] && d[3] == s[3];
		loop = lo6 || same || (v4mapped && (d[3] & 0xff) == 127);
		local = ((__u64)(s[0] ^ s[2]) << 32) | (s[1] ^ s[3]);
		remote = ((__u64)(d[0] ^ d[2]) << 32) | (d[1] ^ d[3]);
		if (v4mapped) { // match the IPv4 side of a dual-stack flow
			local = s[3];
			remote = d[3];
		}
	} else {
		return;
	}
	if (st) {
		if (tx) {
			st->inet_tx += n;
			if (loop)
				st->loop_tx += n;
		} else {
			st->inet_rx += n;
			if (loop)
				st->loop_rx += n;
		}
	}
	if (!loop || !tcp)
		return;
	__u64 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u64 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	// The flow direction src -> dst: a sender is src, a receiver is dst.
	__u64 h = 0xcbf29ce484222325ULL;
	if (tx) {
		h = mix(h, local);
		h = mix(h, lport);
		h = mix(h, remote);
		h = mix(h, rport);
	} else {
		h = mix(h, remote);
		h = mix(h, rport);
		h = mix(h, local);
		h = mix(h, lport);
	}
	chan_add(CHAN_TCP, h | 1, tx ? n : 0, tx ? 0 : n);
}

// Unix sockets: the channel is the receiving socket; a sender finds it as
// its connected peer (unconnected datagrams sent by address count as bytes
// but not as a channel).
static __always_inline void unix_account(struct sock *sk, __s64 n, bool tx)
{
	struct proc_stats *st = stats_for(current_tgid());
	if (st) {
		if (tx)
			st->unix_tx += n;
		else
			st->unix_rx += n;
	}
	__u64 ch = tx ? (__u64)BPF_CORE_READ((struct unix_sock *)sk, peer) : (__u64)sk;
	chan_add(CHAN_UNIX, ch, tx ? n : 0, tx ? 0 : n);
}

// sock_send_length / sock_recv_length fire in sock_sendmsg_nosec and
// sock_recvmsg_nosec: every sendmsg/recvmsg/write/read on a socket, with the
// byte count (or error) the protocol returned.
static __always_inline void sock_account(struct sock *sk, int ret, bool tx)
{
	if (ret <= 0 || !sk)
		return;
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX) {
		unix_account(sk, ret, tx);
		return;
	}
	if (family == AF_INET || family == AF_INET6)
		inet_account(sk, ret, tx, BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP);
}

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define SOCK_STREAM 1
#define SOCK_SEQPACKET 5

// req_sock_kind says whether sk carries requests we time: a connected TCP
// socket, or a connected unix stream/seqpacket socket. 1: TCP, 2: unix, 0: no.
static __always_inline int req_sock_kind(struct sock *sk)
{
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET || family == AF_INET6)
		return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP ? 1 : 0;
	if (family == AF_UNIX) {
		__u16 type = BPF_CORE_READ(sk, sk_type);
		return type == SOCK_STREAM || type == SOCK_SEQPACKET ? 2 : 0;
	}
	return 0;
}

// sock_serves says whether sk is the server's end of its connection.
// TCP: from the handshake (SYN_RECV -> ESTABLISHED on the accepted socket,
// SYN_SENT -> ESTABLISHED on the connecting one) when the collector saw it;
// for a connection older than the collector, the end with the lower port
// (clients use ephemeral ports, services well-known ones). Unix: the
// accepted socket carries the listener's address, the connecting one none
// (unless it was bound: then neither end is taken for a server).
static __always_inline bool sock_serves(struct sock *sk, int kind, __u32 role)
{
	if (role != ROLE_UNKNOWN)
		return role == ROLE_SERVER;
	if (kind == 1) {
		__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		return lport < rport;
	}
	struct unix_sock *u = (struct unix_sock *)sk;
	if (!BPF_CORE_READ(u, addr))
		return false;
	struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ(u, peer);
	return peer && !BPF_CORE_READ(peer, addr);
}

static __always_inline __u32 req_bucket(__u64 ns)
{
	if (ns < (1ULL << REQ_MIN_SHIFT))
		return 0;
	__u32 msb = 0;
	__u64 v = ns;
	if (v >> 32) { v >>= 32; msb += 32; }
	if (v >> 16) { v >>= 16; msb += 16; }
	if (v >> 8) { v >>= 8; msb += 8; }
	if (v >> 4) { v >>= 4; msb += 4; }
	if (v >> 2) { v >>= 2; msb += 2; }
	if (v >> 1) { msb += 1; }
	__u32 sub = (ns >> (msb - 2)) & 3;
	__u32 b = 1 + (msb - REQ_MIN_SHIFT) * 4 + sub;
	return b < REQ_BUCKETS ? b : REQ_BUCKETS - 1;
}

static __always_inline void req_record(__u64 ns)
{
	__u32 tgid = current_tgid();
	struct req_hist *h = bpf_map_lookup_elem(&reqs, &tgid);
	if (!h) {
		// A zero value from read-only data: the struct is too large for the stack.
		bpf_map_update_elem(&reqs, &tgid, &req_zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&reqs, &tgid);
		if (!h)
			return;
	}
	__u32 b = req_bucket(ns);
	if (b >= REQ_BUCKETS)
		return;
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
	__sync_fetch_and_add(&h->buckets[b], 1);
}

// A reply: the first send on a server socket after a request arrived.
static __always_inline void req_reply(struct sock *sk, int ret)
{
	if (ret <= 0 || !sk)
		return;
	__u64 key = (__u64)sk;
	struct req_sock *rs = bpf_map_lookup_elem(&req_socks, &key);
	if (!rs || !rs->pending)
		return;
	if (rs->cookie != bpf_get_socket_cookie(sk)) {
		// A closed socket's entry (a unix socket has no close hook here):
		// its arrival is not this socket's.
		rs->pending = 0;
		return;
	}
	__u64 start = rs->pending;
	rs->pending = 0;
	int kind = req_sock_kind(sk);
	if (!kind || !sock_serves(sk, kind, rs->role))
		return;
	__u64 now = bpf_ktime_get_ns();
	if (now > start)
		req_record(now - start);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	sock_account(sk, ret, true);
	req_reply(sk, ret);
	return 0;
}

// sk_data_ready (Linux 6.6+) fires when data is queued on a socket and its
// reader is woken: the arrival of (part of) a request.
SEC("tp_btf/sk_data_ready")
int BPF_PROG(sk_ready, struct sock *sk)
{
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_ESTABLISHED)
		return 0; // listeners (a new connection), closing sockets
	if (!req_sock_kind(sk))
		return 0;
	__u64 key = (__u64)sk;
	__u64 now = bpf_ktime_get_ns();
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct req_sock *rs = bpf_map_lookup_elem(&req_socks, &key);
	if (!rs || rs->cookie != cookie) {
		// New, or the entry of a closed socket whose memory this one
		// reuses (unix sockets have no close hook here): start afresh.
		struct req_sock v = {.pending = now, .cookie = cookie};
		bpf_map_update_elem(&req_socks, &key, &v, 0);
		return 0;
	}
	if (rs->role == ROLE_CLIENT)
		return 0;
	// Keep the oldest unanswered arrival; one older than a minute belonged
	// to a socket that closed unanswered and whose memory was reused.
	if (!rs->pending || now - rs->pending > REQ_STALE_NS)
		rs->pending = now;
	return 0;
}

// inet_sock_set_state: the TCP handshake says which end serves; a closed
// socket's entry is dropped.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sk_state, struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u64 key = (__u64)sk;
	if (newstate == TCP_CLOSE) {
		bpf_map_delete_elem(&req_socks, &key);
		return 0;
	}
	if (newstate != TCP_ESTABLISHED)
		return 0;
	struct req_sock v = {.cookie = bpf_get_socket_cookie(sk)};
	if (oldstate == TCP_SYN_RECV)
		v.role = ROLE_SERVER;
	else if (oldstate == TCP_SYN_SENT)
		v.role = ROLE_CLIENT;
	else
		return 0;
	bpf_map_update_elem(&req_socks, &key, &v, 0);
	return 0;
}


SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	sock_account(sk, ret, false);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
