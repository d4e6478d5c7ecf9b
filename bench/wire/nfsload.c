/*
 * nfsload: the NFSv3 load client of `npm run bench:wire` (bench/wire.ts).
 *
 * One workload per run against one server, on libnfs's raw async API (Debian's libnfs-dev):
 * exactly the RPCs a workload names go on the wire, N of them in flight on one TCP connection,
 * so zerofs and nfs-ganesha get the same client. MOUNT and the setup RPCs (CREATE, LOOKUP,
 * MKDIR of the work file or directory) are outside the timed window. Prints one JSON object.
 *
 *   nfsload <host> <nfsport> <mountport> <export> <workload> [key=value ...]
 *   nfsload evict <dir>     fdatasync + posix_fadvise(DONTNEED) every file below <dir>
 *
 * Workloads (keys in brackets, defaults after '='):
 *   write       sequential WRITE UNSTABLE of [file] [size] bytes in [bs=1048576] pieces, [inflight=16],
 *               then one COMMIT (inside the timed window); creates or truncates the file
 *   read        sequential READ of [file] [size] in [bs] pieces, [inflight=16]; verifies the data
 *   randread    [ops] READs of [bs=4096] at random aligned offsets below [size], [inflight=32]; verifies
 *   randwrite   [ops] WRITE UNSTABLE of [bs=4096] at random aligned offsets, [inflight=32], then COMMIT
 *   smallfiles  CREATE + WRITE [bs=4096] UNSTABLE + COMMIT of [files] files in directory [dir], [inflight=16]
 *   mkfiles     CREATE of [files] empty files in [dir], [inflight=32] (setup for readdirplus)
 *   stat        [ops] LOOKUP + GETATTR of the [files] files in [dir], [inflight=16]
 *   readdirplus [passes=5] full listings of [dir] with READDIRPLUS ([dircount=8192], [maxcount=8192],
 *               libnfs's own sizes); checks that [files] entries came back
 *   remove      REMOVE of the [files] files in [dir], [inflight=16]
 * File data is a pseudo-random (incompressible) function of the file offset and [seed], so reads
 * can be checked without keeping the data.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

#define POOL_BYTES (64u << 20)
#define MAX_INFLIGHT 256

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nfsload: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ parameters */

static int nargs;
static char **argk;
static const char *param(const char *key, const char *def) {
  size_t n = strlen(key);
  for (int i = 0; i < nargs; i++)
    if (strncmp(argk[i], key, n) == 0 && argk[i][n] == '=') return argk[i] + n + 1;
  if (def == NULL) die("missing parameter %s=", key);
  return def;
}
static uint64_t uparam(const char *key, const char *def) {
  const char *v = param(key, def);
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno != 0 || *end != 0 || end == v) die("parameter %s=%s is not a non-negative integer", key, v);
  return (uint64_t)x;
}

/* ------------------------------------------------------------------ data */

static uint8_t *pool;
static uint64_t seed;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

static void make_pool(void) {
  pool = malloc(POOL_BYTES);
  if (!pool) die("out of memory");
  uint64_t s = seed ^ 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < POOL_BYTES; i += 8) {
    s = mix(s + 0x9e3779b97f4a7c15ULL);
    memcpy(pool + i, &s, 8);
  }
}

/* The bytes of the piece of [bs] bytes starting at a bs-aligned offset: a slice of the pool. */
static const uint8_t *piece(uint64_t base, uint64_t bs) {
  uint64_t span = POOL_BYTES - bs;
  return pool + (mix(base ^ seed) % span);
}

/* ------------------------------------------------------------------ rpc plumbing */

static struct rpc_context *rpc;
static int pending_sync;
static int sync_status;
static void *sync_data;

static void loop_once(void) {
  struct pollfd pfd = {.fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc)};
  if (poll(&pfd, 1, 100) < 0) {
    if (errno == EINTR) return;
    die("poll: %s", strerror(errno));
  }
  if (rpc_service(rpc, pfd.revents) < 0) die("rpc_service: %s", rpc_get_error(rpc));
}

typedef struct { uint32_t len; char val[128]; } fh_t;

static void fh_copy(fh_t *dst, const nfs_fh3 *src) {
  if (src->data.data_len > sizeof dst->val) die("file handle of %u bytes", src->data.data_len);
  dst->len = src->data.data_len;
  memcpy(dst->val, src->data.data_val, dst->len);
}
static nfs_fh3 fh3(fh_t *f) {
  nfs_fh3 h;
  h.data.data_len = f->len;
  h.data.data_val = f->val;
  return h;
}

/* Setup calls: one at a time, the reply is handled inside the callback. */
typedef void (*reply_fn)(void *data, void *ctx);
struct sync_ctx { reply_fn fn; void *ctx; const char *what; };

static void sync_cb(struct rpc_context *r, int status, void *data, void *priv) {
  (void)r;
  struct sync_ctx *s = priv;
  pending_sync = 0;
  sync_status = status;
  if (status != RPC_STATUS_SUCCESS) die("%s: rpc failed: %s", s->what, status == RPC_STATUS_ERROR ? (char *)data : "cancelled/timeout");
  if (s->fn) s->fn(data, s->ctx);
  sync_data = data;
}
static void wait_sync(void) {
  while (pending_sync) loop_once();
}

static void connected_cb(struct rpc_context *r, int status, void *data, void *priv) {
  (void)r;
  (void)priv;
  pending_sync = 0;
  if (status != RPC_STATUS_SUCCESS) die("connect: %s", (char *)data);
}

static void connect_to(const char *host, int port, int program, int version) {
  pending_sync = 1;
  if (rpc_connect_port_async(rpc, host, port, program, version, connected_cb, NULL) != 0) die("connect to %s:%d: %s", host, port, rpc_get_error(rpc));
  wait_sync();
}

static fh_t root;
static void mnt_reply(void *data, void *ctx) {
  (void)ctx;
  mountres3 *res = data;
  if (res->fhs_status != MNT3_OK) die("MOUNT refused: status %d", res->fhs_status);
  fhandle3 *h = &res->mountres3_u.mountinfo.fhandle;
  nfs_fh3 t = {.data = {.data_len = h->fhandle3_len, .data_val = h->fhandle3_val}};
  fh_copy(&root, &t);
}

static void mount_root(const char *host, int mountport, const char *export) {
  rpc = rpc_init_context();
  if (!rpc) die("rpc_init_context failed");
  connect_to(host, mountport, MOUNT_PROGRAM, MOUNT_V3);
  struct sync_ctx s = {mnt_reply, NULL, "MOUNT"};
  pending_sync = 1;
  if (rpc_mount3_mnt_async(rpc, sync_cb, (char *)export, &s) != 0) die("MOUNT: %s", rpc_get_error(rpc));
  wait_sync();
  rpc_destroy_context(rpc);
}

static const char *nfsstat(int st) {
  static char buf[32];
  snprintf(buf, sizeof buf, "NFS3 status %d", st);
  return buf;
}

/* LOOKUP name in dir; 0 and *out set if found, else the NFS status. */
static fh_t lookup_out;
static int lookup_status;
static void lookup_reply(void *data, void *ctx) {
  (void)ctx;
  LOOKUP3res *r = data;
  lookup_status = r->status;
  if (r->status == NFS3_OK) fh_copy(&lookup_out, &r->LOOKUP3res_u.resok.object);
}
static int lookup(fh_t *dir, const char *name, fh_t *out) {
  LOOKUP3args a;
  memset(&a, 0, sizeof a);
  a.what.dir = fh3(dir);
  a.what.name = (char *)name;
  struct sync_ctx s = {lookup_reply, NULL, "LOOKUP"};
  pending_sync = 1;
  if (rpc_nfs3_lookup_async(rpc, sync_cb, &a, &s) != 0) die("LOOKUP: %s", rpc_get_error(rpc));
  wait_sync();
  if (lookup_status == NFS3_OK) *out = lookup_out;
  return lookup_status;
}

static fh_t made;
static int made_status;
static void create_reply(void *data, void *ctx) {
  (void)ctx;
  CREATE3res *r = data;
  made_status = r->status;
  if (r->status == NFS3_OK) {
    if (!r->CREATE3res_u.resok.obj.handle_follows) die("CREATE reply without a file handle");
    fh_copy(&made, &r->CREATE3res_u.resok.obj.post_op_fh3_u.handle);
  }
}
static void mkdir_reply(void *data, void *ctx) {
  (void)ctx;
  MKDIR3res *r = data;
  made_status = r->status;
  if (r->status == NFS3_OK) {
    if (!r->MKDIR3res_u.resok.obj.handle_follows) die("MKDIR reply without a file handle");
    fh_copy(&made, &r->MKDIR3res_u.resok.obj.post_op_fh3_u.handle);
  }
}

static void fill_create(CREATE3args *a, fh_t *dir, const char *name, int truncate) {
  memset(a, 0, sizeof *a);
  a->where.dir = fh3(dir);
  a->where.name = (char *)name;
  a->how.mode = UNCHECKED;
  a->how.createhow3_u.obj_attributes.mode.set_it = 1;
  a->how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
  if (truncate) {
    a->how.createhow3_u.obj_attributes.size.set_it = 1;
    a->how.createhow3_u.obj_attributes.size.set_size3_u.size = 0;
  }
}

/* CREATE UNCHECKED with size 0: creates or truncates. */
static fh_t create_file(fh_t *dir, const char *name) {
  CREATE3args a;
  fill_create(&a, dir, name, 1);
  struct sync_ctx s = {create_reply, NULL, "CREATE"};
  pending_sync = 1;
  if (rpc_nfs3_create_async(rpc, sync_cb, &a, &s) != 0) die("CREATE: %s", rpc_get_error(rpc));
  wait_sync();
  if (made_status != NFS3_OK) die("CREATE %s: %s", name, nfsstat(made_status));
  return made;
}

static fh_t ensure_dir(fh_t *parent, const char *name) {
  fh_t out;
  if (lookup(parent, name, &out) == NFS3_OK) return out;
  MKDIR3args a;
  memset(&a, 0, sizeof a);
  a.where.dir = fh3(parent);
  a.where.name = (char *)name;
  a.attributes.mode.set_it = 1;
  a.attributes.mode.set_mode3_u.mode = 0755;
  struct sync_ctx s = {mkdir_reply, NULL, "MKDIR"};
  pending_sync = 1;
  if (rpc_nfs3_mkdir_async(rpc, sync_cb, &a, &s) != 0) die("MKDIR: %s", rpc_get_error(rpc));
  wait_sync();
  if (made_status != NFS3_OK) die("MKDIR %s: %s", name, nfsstat(made_status));
  return made;
}

static fh_t must_lookup(fh_t *dir, const char *name) {
  fh_t out;
  int st = lookup(dir, name, &out);
  if (st != NFS3_OK) die("LOOKUP %s: %s", name, nfsstat(st));
  return out;
}

static int commit_status;
static void commit_reply(void *data, void *ctx) {
  (void)ctx;
  commit_status = ((COMMIT3res *)data)->status;
}
static void commit(fh_t *f) {
  COMMIT3args a;
  memset(&a, 0, sizeof a);
  a.file = fh3(f);
  struct sync_ctx s = {commit_reply, NULL, "COMMIT"};
  pending_sync = 1;
  if (rpc_nfs3_commit_async(rpc, sync_cb, &a, &s) != 0) die("COMMIT: %s", rpc_get_error(rpc));
  wait_sync();
  if (commit_status != NFS3_OK) die("COMMIT: %s", nfsstat(commit_status));
}

/* ------------------------------------------------------------------ the op pool */

/* One operation in flight: a small state machine of one or more RPCs. */
struct slot {
  uint64_t index;
  int step;
  double started;
  fh_t fh;
  char name[64];
  uint64_t offset;
};

static struct slot slots[MAX_INFLIGHT];
static uint64_t total_ops, next_op, done_ops;
static double *lat;
static int in_flight;
static const char *workload;

typedef void (*start_fn)(struct slot *s);
static start_fn op_start;

static void op_finished(struct slot *s) {
  lat[s->index] = (now_s() - s->started) * 1000.0;
  done_ops++;
  in_flight--;
  if (next_op < total_ops) {
    s->index = next_op++;
    s->step = 0;
    s->started = now_s();
    in_flight++;
    op_start(s);
  }
}

static void check_rpc(int status, void *data, const char *what) {
  if (status != RPC_STATUS_SUCCESS) die("%s: rpc failed: %s", what, status == RPC_STATUS_ERROR ? (char *)data : "cancelled/timeout");
}

static double run_pool(uint64_t ops, int inflight) {
  if (inflight < 1 || inflight > MAX_INFLIGHT) die("inflight must be 1..%d", MAX_INFLIGHT);
  total_ops = ops;
  next_op = 0;
  done_ops = 0;
  lat = calloc(ops ? ops : 1, sizeof(double));
  if (!lat) die("out of memory");
  double t0 = now_s();
  for (int i = 0; i < inflight && next_op < total_ops; i++) {
    struct slot *s = &slots[i];
    s->index = next_op++;
    s->step = 0;
    s->started = now_s();
    in_flight++;
    op_start(s);
  }
  while (done_ops < total_ops) loop_once();
  return now_s() - t0;
}

/* ------------------------------------------------------------------ workloads */

static fh_t file_fh, dir_fh;
static uint64_t bs, size, nfiles;
static uint64_t bad_reads;
static int check_data = 1;

static void write_cb(struct rpc_context *r, int status, void *data, void *priv) {
  (void)r;
  check_rpc(status, data, "WRITE");
  WRITE3res *res = data;
  struct slot *s = priv;
  if (res->status != NFS3_OK) die("WRITE at %" PRIu64 ": %s", s->offset, nfsstat(res->status));
  if (res->WRITE3res_u.resok.count != bs) die("short WRITE at %" PRIu64 ": %u of %" PRIu64, s->offset, res->WRITE3res_u.resok.count, bs);
  op_finished(s);
}

static void send_write(struct slot *s, fh_t *f, uint64_t offset) {
  WRITE3args a;
  memset(&a, 0, sizeof a);
  a.file = fh3(f);
  a.offset = offset;
  a.count = (count3)bs;
  a.stable = UNSTABLE;
  a.data.data_len = (u_int)bs;
  a.data.data_val = (char *)piece(offset, bs);
  s->offset = offset;
  if (rpc_nfs3_write_async(rpc, write_cb, &a, s) != 0) die("WRITE: %s", rpc_get_error(rpc));
}

static void seqwrite_start(struct slot *s) { send_write(s, &file_fh, s->index * bs); }

static uint64_t rand_offset(uint64_t i) {
  uint64_t blocks = size / bs;
  return (mix(i * 0x9e3779b97f4a7c15ULL + seed + 1) % blocks) * bs;
}
static void randwrite_start(struct slot *s) { send_write(s, &file_fh, rand_offset(s->index)); }

/* Reads are checked against the sequential layout: the file was written in pieces of wbs bytes. */
static uint64_t wbs;
static void read_cb(struct rpc_context *r, int status, void *data, void *priv) {
  (void)r;
  check_rpc(status, data, "READ");
  READ3res *res = data;
  struct slot *s = priv;
  if (res->status != NFS3_OK) die("READ at %" PRIu64 ": %s", s->offset, nfsstat(res->status));
  READ3resok *ok = &res->READ3res_u.resok;
  if (ok->count != bs || ok->data.data_len != bs) die("short READ at %" PRIu64 ": %u of %" PRIu64, s->offset, ok->count, bs);
  if (check_data) {
    uint64_t base = s->offset / wbs * wbs;
    if (memcmp(ok->data.data_val, piece(base, wbs) + (s->offset - base), bs) != 0) bad_reads++;
  }
  op_finished(s);
}
static void send_read(struct slot *s, uint64_t offset) {
  READ3args a;
  memset(&a, 0, sizeof a);
  a.file = fh3(&file_fh);
  a.offset = offset;
  a.count = (count3)bs;
  s->offset = offset;
  if (rpc_nfs3_read_async(rpc, read_cb, &a, s) != 0) die("READ: %s", rpc_get_error(rpc));
}
static void seqread_start(struct slot *s) { send_read(s, s->index * bs); }
static void randread_start(struct slot *s) { send_read(s, rand_offset(s->index)); }

static void file_name(char *buf, size_t n, uint64_t i) { snprintf(buf, n, "f%07" PRIu64, i); }

/* smallfiles: CREATE -> WRITE -> COMMIT; mkfiles: CREATE only. */
static int small_write;
static void small_cb(struct rpc_context *r, int status, void *data, void *priv) {
  (void)r;
  struct slot *s = priv;
  if (s->step == 0) {
    check_rpc(status, data, "CREATE");
    CREATE3res *res = data;
    if (res->status != NFS3_OK) die("CREATE %s: %s", s->name, nfsstat(res->status));
    if (!small_write) {
      op_finished(s);
      return;
    }
    if (!res->CREATE3res_u.resok.obj.handle_follows) die("CREATE reply without a file handle");
    fh_copy(&s->fh, &res->CREATE3res_u.resok.obj.post_op_fh3_u.handle);
    s->step = 1;
    WRITE3args a;
    memset(&a, 0, sizeof a);
    a.file = fh3(&s->fh);
    a.count = (count3)bs;
    a.stable = UNSTABLE;
    a.data.data_len = (u_int)bs;
    a.data.data_val = (char *)piece(s->index * bs, bs);
    if (rpc_nfs3_write_async(rpc, small_cb, &a, s) != 0) die("WRITE: %s", rpc_get_error(rpc));
  } else if (s->step == 1) {
    check_rpc(status, data, "WRITE");
    WRITE3res *res = data;
    if (res->status != NFS3_OK) die("WRITE %s: %s", s->name, nfsstat(res->status));
    s->step = 2;
    COMMIT3args a;
    memset(&a, 0, sizeof a);
    a.file = fh3(&s->fh);
    if (rpc_nfs3_commit_async(rpc, small_cb, &a, s) != 0) die("COMMIT: %s", rpc_get_error(rpc));
  } else {
    check_rpc(status, data, "COMMIT");
    COMMIT3res *res = data;
    if (res->status != NFS3_OK) die("COMMIT %s: %s", s->name, nfsstat(res->status));
    op_finished(s);
  }
}
static void small_start(struct slot *s) {
  file_name(s->name, sizeof s->name, s->index);
  CREATE3args a;
  fill_create(&a, &dir_fh, s->name, 0);
  if (rpc_nfs3_create_async(rpc, small_cb, &a, s) != 0) die("CREATE: %s", rpc_get_error(rpc));
}

/* stat: LOOKUP -> GETATTR of the handle it returned. */
static void stat_cb(struct rpc_context *r, int status, void *data, void *priv) {
  (void)r;
  struct slot *s = priv;
  if (s->step == 0) {
    check_rpc(status, data, "LOOKUP");
    LOOKUP3res *res = data;
    if (res->status != NFS3_OK) die("LOOKUP %s: %s", s->name, nfsstat(res->status));
    fh_copy(&s->fh, &res->LOOKUP3res_u.resok.object);
    s->step = 1;
    GETATTR3args a;
    memset(&a, 0, sizeof a);
    a.object = fh3(&s->fh);
    if (rpc_nfs3_getattr_async(rpc, stat_cb, &a, s) != 0) die("GETATTR: %s", rpc_get_error(rpc));
  } else {
    check_rpc(status, data, "GETATTR");
    GETATTR3res *res = data;
    if (res->status != NFS3_OK) die("GETATTR %s: %s", s->name, nfsstat(res->status));
    op_finished(s);
  }
}
static void stat_start(struct slot *s) {
  file_name(s->name, sizeof s->name, mix(s->index + seed) % nfiles);
  LOOKUP3args a;
  memset(&a, 0, sizeof a);
  a.what.dir = fh3(&dir_fh);
  a.what.name = s->name;
  if (rpc_nfs3_lookup_async(rpc, stat_cb, &a, s) != 0) die("LOOKUP: %s", rpc_get_error(rpc));
}

static void remove_cb(struct rpc_context *r, int status, void *data, void *priv) {
  (void)r;
  struct slot *s = priv;
  check_rpc(status, data, "REMOVE");
  REMOVE3res *res = data;
  if (res->status != NFS3_OK) die("REMOVE %s: %s", s->name, nfsstat(res->status));
  op_finished(s);
}
static void remove_start(struct slot *s) {
  file_name(s->name, sizeof s->name, s->index);
  REMOVE3args a;
  memset(&a, 0, sizeof a);
  a.object.dir = fh3(&dir_fh);
  a.object.name = s->name;
  if (rpc_nfs3_remove_async(rpc, remove_cb, &a, s) != 0) die("REMOVE: %s", rpc_get_error(rpc));
}

/* READDIRPLUS: one listing is a chain of calls; each call is one "op" in the latency list. */
static uint64_t rdp_entries, rdp_calls;
static int rdp_eof;
static uint64_t rdp_cookie;
static char rdp_verf[NFS3_COOKIEVERFSIZE];
static void rdp_reply(void *data, void *ctx) {
  (void)ctx;
  READDIRPLUS3res *res = data;
  if (res->status != NFS3_OK) die("READDIRPLUS: %s", nfsstat(res->status));
  READDIRPLUS3resok *ok = &res->READDIRPLUS3res_u.resok;
  memcpy(rdp_verf, ok->cookieverf, NFS3_COOKIEVERFSIZE);
  for (entryplus3 *e = ok->reply.entries; e; e = e->nextentry) {
    if (strcmp(e->name, ".") != 0 && strcmp(e->name, "..") != 0) {
      if (!e->name_attributes.attributes_follow || !e->name_handle.handle_follows) die("READDIRPLUS entry %s without attributes or handle", e->name);
      rdp_entries++;
    }
    rdp_cookie = e->cookie;
  }
  rdp_eof = ok->reply.eof;
}

/* ------------------------------------------------------------------ evict */

static int evict_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type != FTW_F) return 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0; /* gone meanwhile, or not ours to read */
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  return 0;
}

/* ------------------------------------------------------------------ main */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double pct(double *sorted, uint64_t n, double p) {
  if (n == 0) return 0;
  uint64_t i = (uint64_t)(p / 100.0 * (double)n);
  if (i >= n) i = n - 1;
  return sorted[i];
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "evict") == 0) {
    if (nftw(argv[2], evict_one, 64, FTW_PHYS) != 0) die("evict %s: %s", argv[2], strerror(errno));
    printf("{\"evicted\":true}\n");
    return 0;
  }
  if (argc < 6) die("usage: nfsload <host> <nfsport> <mountport> <export> <workload> [key=value ...] | nfsload evict <dir>");
  const char *host = argv[1];
  int nfsport = atoi(argv[2]), mountport = atoi(argv[3]);
  const char *export = argv[4];
  workload = argv[5];
  nargs = argc - 6;
  argk = argv + 6;
  seed = uparam("seed", "1");
  check_data = (int)uparam("verify", "1");
  make_pool();

  mount_root(host, mountport, export);
  rpc = rpc_init_context();
  if (!rpc) die("rpc_init_context failed");
  connect_to(host, nfsport, NFS_PROGRAM, NFS_V3);

  uint64_t ops = 0, bytes = 0;
  double seconds = 0, commit_ms = -1;
  int inflight = 16;

  if (strcmp(workload, "write") == 0 || strcmp(workload, "read") == 0 || strcmp(workload, "randread") == 0 || strcmp(workload, "randwrite") == 0) {
    int seq = workload[0] == 'w' || (workload[0] == 'r' && workload[1] == 'e');
    int writing = strstr(workload, "write") != NULL;
    const char *name = param("file", NULL);
    size = uparam("size", NULL);
    bs = uparam("bs", seq ? "1048576" : "4096");
    wbs = uparam("wbs", "1048576");
    if (bs == 0 || bs > (16u << 20) || size < bs) die("need 0 < bs <= 16 MiB and size >= bs");
    if (!seq && (wbs % bs != 0)) die("wbs must be a multiple of bs");
    inflight = (int)uparam("inflight", seq ? "16" : "32");
    file_fh = strcmp(workload, "write") == 0 ? create_file(&root, name) : must_lookup(&root, name);
    ops = seq ? size / bs : uparam("ops", NULL);
    op_start = seq ? (writing ? seqwrite_start : seqread_start) : (writing ? randwrite_start : randread_start);
    double t0 = now_s();
    run_pool(ops, inflight);
    if (writing) {
      double c0 = now_s();
      commit(&file_fh);
      commit_ms = (now_s() - c0) * 1000.0;
    }
    seconds = now_s() - t0;
    bytes = ops * bs;
    if (bad_reads > 0) die("%" PRIu64 " READs returned data that was not written", bad_reads);
  } else if (strcmp(workload, "smallfiles") == 0 || strcmp(workload, "mkfiles") == 0) {
    small_write = workload[0] == 's';
    dir_fh = ensure_dir(&root, param("dir", NULL));
    nfiles = ops = uparam("files", NULL);
    bs = uparam("bs", "4096");
    inflight = (int)uparam("inflight", small_write ? "16" : "32");
    op_start = small_start;
    seconds = run_pool(ops, inflight);
    bytes = small_write ? ops * bs : 0;
  } else if (strcmp(workload, "stat") == 0) {
    dir_fh = must_lookup(&root, param("dir", NULL));
    nfiles = uparam("files", NULL);
    ops = uparam("ops", NULL);
    inflight = (int)uparam("inflight", "16");
    op_start = stat_start;
    seconds = run_pool(ops, inflight);
  } else if (strcmp(workload, "remove") == 0) {
    dir_fh = must_lookup(&root, param("dir", NULL));
    nfiles = ops = uparam("files", NULL);
    inflight = (int)uparam("inflight", "16");
    op_start = remove_start;
    seconds = run_pool(ops, inflight);
  } else if (strcmp(workload, "readdirplus") == 0) {
    dir_fh = must_lookup(&root, param("dir", NULL));
    nfiles = uparam("files", NULL);
    uint64_t passes = uparam("passes", "5");
    /* libnfs's own directory listing asks for 8 KiB (dircount and maxcount 8192). */
    uint32_t dircount = (uint32_t)uparam("dircount", "8192"), maxcount = (uint32_t)uparam("maxcount", "8192");
    uint64_t cap = 1 << 20;
    lat = calloc(cap, sizeof(double));
    double t0 = now_s();
    for (uint64_t p = 0; p < passes; p++) {
      rdp_eof = 0;
      rdp_cookie = 0;
      memset(rdp_verf, 0, sizeof rdp_verf);
      uint64_t before = rdp_entries;
      while (!rdp_eof) {
        READDIRPLUS3args a;
        memset(&a, 0, sizeof a);
        a.dir = fh3(&dir_fh);
        a.cookie = rdp_cookie;
        memcpy(a.cookieverf, rdp_verf, sizeof rdp_verf);
        a.dircount = dircount;
        a.maxcount = maxcount;
        struct sync_ctx s = {rdp_reply, NULL, "READDIRPLUS"};
        double c0 = now_s();
        pending_sync = 1;
        if (rpc_nfs3_readdirplus_async(rpc, sync_cb, &a, &s) != 0) die("READDIRPLUS: %s", rpc_get_error(rpc));
        wait_sync();
        if (rdp_calls < cap) lat[rdp_calls] = (now_s() - c0) * 1000.0;
        rdp_calls++;
      }
      if (rdp_entries - before != nfiles) die("READDIRPLUS listed %" PRIu64 " entries, expected %" PRIu64, rdp_entries - before, nfiles);
    }
    seconds = now_s() - t0;
    ops = rdp_entries;
    done_ops = rdp_calls < cap ? rdp_calls : cap;
    inflight = 1;
  } else {
    die("unknown workload %s", workload);
  }

  uint64_t nlat = strcmp(workload, "readdirplus") == 0 ? done_ops : ops;
  qsort(lat, nlat, sizeof(double), cmp_double);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  printf("{\"workload\":\"%s\",\"ops\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f,\"inflight\":%d,\"calls\":%" PRIu64
         ",\"p50Ms\":%.4f,\"p99Ms\":%.4f,\"maxMs\":%.4f,\"commitMs\":%.3f,\"clientCpuS\":%.3f}\n",
         workload, ops, bytes, seconds, inflight, nlat, pct(lat, nlat, 50), pct(lat, nlat, 99), nlat ? lat[nlat - 1] : 0.0, commit_ms, cpu);
  rpc_destroy_context(rpc);
  return 0;
}
