#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "authsrv.h"
#include "clock.h"
#include "dnsq.h"

#ifndef DT_SRCDIR
#error "DT_SRCDIR must name the source tree (set by Makefile.am)"
#endif

/* Where the zone files are read from; they are copied into the private
 * directory so NSD never touches the (possibly read-only) source tree. */
#define ZONE_SRCDIR DT_SRCDIR "/tests/fake"

#define PATHLEN 4096
/* Shorter than PATHLEN so that "dir/file" always fits a PATHLEN buffer. */
#define DIRLEN 1024
#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
/* Start-up is retried only when NSD exits early, which is what losing the
 * race for the port chosen looks like. */
#define START_ATTEMPTS 5
/* Enough of the log to show why NSD stopped, short enough to read. */
#define LOG_TAIL_BYTES 1500

struct authsrv {
  pid_t pid; /* NSD's main process, leader of its own process group */
  uint16_t port;
  bool has_ipv6;
  char nsd[PATHLEN];
  char dir[DIRLEN];
  /* authsrv_start_extra's zone, or "" */
  char extra_name[256];
  char extra_path[PATHLEN];
};

/* The extra zone's file name in the private directory. */
#define EXTRA_FILE "extra.zone"

static const struct {
  const char *name;
  const char *file;
} zones[] = {
    {AUTHSRV_ZONE, "test.zone"},
    {AUTHSRV_ZONE_REV4, "test-rev4.zone"},
    {AUTHSRV_ZONE_REV6, "test-rev6.zone"},
};
#define NZONES (sizeof(zones) / sizeof(zones[0]))

static char last_error[4096];

static void set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof(last_error), fmt, ap);
  va_end(ap);
}

const char *authsrv_last_error(void) {
  return last_error;
}

/* --- finding nsd ---------------------------------------------------------- */

static bool is_executable(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* A name with a slash is a path; a bare name is looked up in $PATH like the
 * shell does, except that empty entries (the current directory) are
 * skipped: a test must not run whatever "nsd" lies in its working
 * directory. */
static bool lookup(const char *name, char *buf, size_t cap) {
  if (strchr(name, '/') != NULL) {
    if (!is_executable(name) || strlen(name) >= cap) {
      return false;
    }
    memcpy(buf, name, strlen(name) + 1);
    return true;
  }
  const char *path = getenv("PATH");
  if (path == NULL) {
    return false;
  }
  while (*path != '\0') {
    size_t len = strcspn(path, ":");
    if (len > 0) {
      int n = snprintf(buf, cap, "%.*s/%s", (int)len, path, name);
      if (n > 0 && (size_t)n < cap && is_executable(buf)) {
        return true;
      }
    }
    path += len;
    if (*path == ':') {
      path++;
    }
  }
  return false;
}

static bool find_nsd(char *buf, size_t cap) {
  const char *env = getenv("DT_NSD");
  if (env != NULL && env[0] != '\0') {
    return lookup(env, buf, cap);
  }
  return lookup("nsd", buf, cap) || lookup("/usr/sbin/nsd", buf, cap);
}

bool authsrv_available(void) {
  char buf[PATHLEN];
  return find_nsd(buf, sizeof(buf));
}

/* --- the private directory ------------------------------------------------ */

/* The directory's name is written into nsd.conf inside double quotes, so a
 * $TMPDIR that NSD's parser could misread is not used. */
static bool usable_tmpdir(const char *dir) {
  return dir != NULL && dir[0] == '/' && strlen(dir) < DIRLEN - 32 &&
         strpbrk(dir, "\"\\\n#") == NULL;
}

static bool make_dir(authsrv_t *srv) {
  const char *base = getenv("TMPDIR");
  if (!usable_tmpdir(base)) {
    base = "/tmp";
  }
  snprintf(srv->dir, sizeof(srv->dir), "%s/dt-authsrv.XXXXXX", base);
  if (mkdtemp(srv->dir) == NULL) {
    set_error("mkdtemp(%s): %s", srv->dir, strerror(errno));
    srv->dir[0] = '\0';
    return false;
  }
  return true;
}

static bool copy_file(const char *from, const char *to) {
  bool ok = false;
  FILE *in = fopen(from, "rb");
  FILE *out = NULL;
  if (in == NULL) {
    set_error("cannot read %s: %s", from, strerror(errno));
    goto done;
  }
  out = fopen(to, "wb");
  if (out == NULL) {
    set_error("cannot create %s: %s", to, strerror(errno));
    goto done;
  }
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
    if (fwrite(buf, 1, n, out) != n) {
      set_error("cannot write %s: %s", to, strerror(errno));
      goto done;
    }
  }
  if (ferror(in)) {
    set_error("cannot read %s: %s", from, strerror(errno));
    goto done;
  }
  ok = true;

done:
  if (out != NULL && fclose(out) != 0 && ok) {
    set_error("cannot write %s: %s", to, strerror(errno));
    ok = false;
  }
  if (in != NULL) {
    fclose(in);
  }
  return ok;
}

static bool copy_zones(const authsrv_t *srv) {
  for (size_t i = 0; i < NZONES; i++) {
    char from[PATHLEN];
    char to[PATHLEN];
    snprintf(from, sizeof(from), "%s/%s", ZONE_SRCDIR, zones[i].file);
    snprintf(to, sizeof(to), "%s/%s", srv->dir, zones[i].file);
    if (!copy_file(from, to)) {
      return false;
    }
  }
  if (srv->extra_name[0] != '\0') {
    char to[PATHLEN];
    snprintf(to, sizeof(to), "%s/%s", srv->dir, EXTRA_FILE);
    return copy_file(srv->extra_path, to);
  }
  return true;
}

/* NSD leaves at most a couple of levels (xfrdir makes one subdirectory);
 * the depth bound keeps a surprise from turning into a long walk. */
static void remove_tree(const char *path, int depth) {
  DIR *d = opendir(path);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
        continue;
      }
      char child[PATHLEN];
      int n = snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
      if (n < 0 || (size_t)n >= sizeof(child)) {
        continue;
      }
      struct stat st;
      if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (depth < 4) {
          remove_tree(child, depth + 1);
        }
      } else {
        unlink(child);
      }
    }
    closedir(d);
  }
  rmdir(path);
}

/* --- ports ---------------------------------------------------------------- */

static int bound_socket(int family, int type, uint16_t port) {
  struct sockaddr_storage addr;
  socklen_t len;
  if (dnsq_loopback(family, port, &addr, &len) != DT_OK) {
    return -1;
  }
  int fd = socket(family, type, 0);
  if (fd < 0) {
    return -1;
  }
  if (family == AF_INET6) {
    /* Only ::1 is probed; a dual-stack socket would also claim 127.0.0.1's
     * port on some systems and fail for the wrong reason. */
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static bool ipv6_usable(void) {
  int fd = bound_socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) {
    return false;
  }
  close(fd);
  return true;
}

/* Asks the kernel for a free UDP port on 127.0.0.1, then checks that TCP
 * (and ::1 when used) have the same port free. The sockets are closed
 * before NSD binds, so another process can still take the port; start-up
 * retries when that happens. */
static bool pick_port(bool ipv6, uint16_t *out) {
  for (int tries = 0; tries < 50; tries++) {
    int fds[4] = {-1, -1, -1, -1};
    uint16_t port = 0;
    fds[0] = bound_socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[0] >= 0) {
      struct sockaddr_in sin;
      socklen_t len = sizeof(sin);
      if (getsockname(fds[0], (struct sockaddr *)&sin, &len) == 0) {
        port = ntohs(sin.sin_port);
      }
    }
    bool ok = port != 0;
    if (ok) {
      fds[1] = bound_socket(AF_INET, SOCK_STREAM, port);
      ok = fds[1] >= 0;
    }
    if (ok && ipv6) {
      fds[2] = bound_socket(AF_INET6, SOCK_DGRAM, port);
      fds[3] = bound_socket(AF_INET6, SOCK_STREAM, port);
      ok = fds[2] >= 0 && fds[3] >= 0;
    }
    for (int i = 0; i < 4; i++) {
      if (fds[i] >= 0) {
        close(fds[i]);
      }
    }
    if (ok) {
      *out = port;
      return true;
    }
  }
  set_error("no free port on loopback for both UDP and TCP");
  return false;
}

/* --- configuration -------------------------------------------------------- */

static bool write_conf(const authsrv_t *srv) {
  char path[PATHLEN];
  snprintf(path, sizeof(path), "%s/nsd.conf", srv->dir);
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    set_error("cannot create %s: %s", path, strerror(errno));
    return false;
  }
  const char *d = srv->dir;
  /* Every path NSD could write to is inside the private directory, and
   * nothing is read from /etc/nsd or /var/lib/nsd, so neither the host's
   * NSD setup nor a non-root user's lack of access to it matters. */
  fprintf(f,
          "# Written by tests/fake/authsrv.c for one test run.\n"
          "server:\n"
          "  ip-address: 127.0.0.1@%u\n",
          (unsigned)srv->port);
  if (srv->has_ipv6) {
    fprintf(f, "  ip-address: ::1@%u\n", (unsigned)srv->port);
  }
  fprintf(f,
          /* One server process: answers are deterministic and start-up is
           * quick. */
          "  server-count: 1\n"
          /* Run as whoever started the test: no chroot, no setuid. */
          "  username: \"\"\n"
          "  chroot: \"\"\n"
          "  zonesdir: \"%s\"\n"
          "  database: \"\"\n"
          "  zonelistfile: \"%s/zone.list\"\n"
          "  xfrdfile: \"%s/xfrd.state\"\n"
          "  xfrdir: \"%s\"\n"
          "  pidfile: \"%s/nsd.pid\"\n"
          "  logfile: \"%s/nsd.log\"\n"
          "  verbosity: 1\n"
          /* Debian builds NSD with response rate limiting on by default;
           * tests ask the same question many times from one address and
           * would see dropped or truncated replies. 0 disables both
           * limits. */
          "  rrl-ratelimit: 0\n"
          "  rrl-whitelist-ratelimit: 0\n"
          /* Records come back in zone order, so failures are
           * reproducible. */
          "  round-robin: no\n"
          "remote-control:\n"
          "  control-enable: no\n",
          d, d, d, d, d, d);
  for (size_t i = 0; i < NZONES; i++) {
    fprintf(f, "zone:\n  name: \"%s\"\n  zonefile: \"%s/%s\"\n", zones[i].name,
            d, zones[i].file);
  }
  if (srv->extra_name[0] != '\0') {
    fprintf(f, "zone:\n  name: \"%s\"\n  zonefile: \"%s/%s\"\n",
            srv->extra_name, d, EXTRA_FILE);
  }
  if (ferror(f) != 0 || fclose(f) != 0) {
    set_error("cannot write %s", path);
    return false;
  }
  return true;
}

/* --- the process ---------------------------------------------------------- */

static bool spawn(authsrv_t *srv) {
  char conf[PATHLEN];
  char log[PATHLEN];
  snprintf(conf, sizeof(conf), "%s/nsd.conf", srv->dir);
  snprintf(log, sizeof(log), "%s/nsd.log", srv->dir);
  /* O_APPEND: NSD opens the same file as its logfile; both writers then
   * add to the end instead of overwriting each other. */
  int logfd =
      open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (logfd < 0) {
    set_error("cannot create %s: %s", log, strerror(errno));
    return false;
  }
  int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nullfd < 0) {
    set_error("cannot open /dev/null: %s", strerror(errno));
    close(logfd);
    return false;
  }
  /* Everything the child needs is prepared before fork(): after it, only
   * async-signal-safe calls are allowed in a process that may have
   * threads. */
  char *argv[] = {srv->nsd, "-d", "-c", conf, NULL};
  long maxfd = sysconf(_SC_OPEN_MAX);
  if (maxfd < 0 || maxfd > 4096) {
    maxfd = 4096;
  }
#ifdef __linux__
  pid_t parent = getpid();
#endif
  sigset_t none;
  sigemptyset(&none);

  pid_t pid = fork();
  if (pid < 0) {
    set_error("fork: %s", strerror(errno));
    close(logfd);
    close(nullfd);
    return false;
  }
  if (pid == 0) {
    /* Its own process group, so stopping it can reach the server and xfrd
     * processes NSD forks, and a ^C meant for the test runner is not
     * NSD's business. */
    setpgid(0, 0);
#ifdef __linux__
    /* If the test dies without cleaning up (a crash, an abort from a
     * sanitizer), NSD goes with it instead of holding the port forever.
     * The signal follows the death of the thread that forked, which is
     * why servers are started from one thread. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
      _exit(127);
    }
#endif
    /* A blocked SIGTERM inherited from the test would make NSD unkillable
     * but by SIGKILL. */
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0) {
      _exit(127);
    }
    /* Sockets the test opened without close-on-exec (a fake server, say)
     * must not stay open in NSD after the test closes them. */
    for (long fd = 3; fd < maxfd; fd++) {
      close((int)fd);
    }
    execv(argv[0], argv);
    static const char msg[] = "authsrv: execv of nsd failed\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  /* Also set from this side: kill(-pid) must find the group even if the
   * child has not run yet. EACCES once it has exec'd is harmless. */
  setpgid(pid, pid);
  close(logfd);
  close(nullfd);
  srv->pid = pid;
  return true;
}

/* Whether the child has exited, without reaping it: while it is a zombie
 * its process group ID cannot be reused, so signalling the group stays
 * safe. */
static bool has_exited(pid_t pid) {
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;
  }
  return si.si_pid == pid;
}

/* Kills whatever is left of NSD's process group and reaps the main
 * process. Returns its wait status. */
static int reap(authsrv_t *srv) {
  int status = 0;
  if (srv->pid <= 0) {
    return 0;
  }
  kill(-srv->pid, SIGKILL);
  while (waitpid(srv->pid, &status, 0) < 0 && errno == EINTR) {
  }
  srv->pid = -1;
  return status;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void stop(authsrv_t *srv) {
  if (srv->pid <= 0) {
    return;
  }
  /* SIGTERM to the main process only: it shuts its children down and
   * removes its pid file and xfr directory. */
  kill(srv->pid, SIGTERM);
  for (long waited = 0; waited < STOP_TIMEOUT_MS; waited += 10) {
    if (has_exited(srv->pid)) {
      break;
    }
    sleep_ms(10);
  }
  reap(srv);
}

/* --- readiness ------------------------------------------------------------ */

static bool soa_answered(int family, uint16_t port, const char *zone) {
  dnsq_opts_t o;
  dnsq_opts_init(&o);
  o.family = family;
  o.port = port;
  o.timeout_ms = 250;
  ldns_pkt *reply = NULL;
  if (dnsq_query(&o, zone, LDNS_RR_TYPE_SOA, &reply) != DT_OK) {
    return false;
  }
  /* An authoritative SOA proves the zone is loaded, not just that
   * something listens on the port. */
  bool ok = ldns_pkt_get_rcode(reply) == LDNS_RCODE_NOERROR &&
            ldns_pkt_aa(reply) && ldns_pkt_ancount(reply) >= 1 &&
            ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(reply), 0)) ==
                LDNS_RR_TYPE_SOA;
  ldns_pkt_free(reply);
  return ok;
}

static bool all_zones_answered(const authsrv_t *srv) {
  for (size_t i = 0; i < NZONES; i++) {
    if (!soa_answered(AF_INET, srv->port, zones[i].name)) {
      return false;
    }
  }
  if (srv->extra_name[0] != '\0' &&
      !soa_answered(AF_INET, srv->port, srv->extra_name)) {
    return false;
  }
  return !srv->has_ipv6 || soa_answered(AF_INET6, srv->port, AUTHSRV_ZONE);
}

typedef enum { READY, EXITED, TIMED_OUT } readiness_t;

static readiness_t wait_ready(const authsrv_t *srv) {
  dt_deadline_t deadline = dt__deadline_in(NULL, READY_TIMEOUT_MS);
  while (!dt__deadline_passed(NULL, deadline)) {
    if (has_exited(srv->pid)) {
      return EXITED;
    }
    if (all_zones_answered(srv)) {
      return READY;
    }
    sleep_ms(20);
  }
  return TIMED_OUT;
}

/* The last lines of NSD's log, starting at a line boundary. */
static void log_tail(const authsrv_t *srv, char *buf, size_t cap) {
  char path[PATHLEN];
  snprintf(path, sizeof(path), "%s/nsd.log", srv->dir);
  buf[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(buf, cap, "(no log: %s)", strerror(errno));
    return;
  }
  long want = (long)cap - 1;
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    if (size > want) {
      fseek(f, size - want, SEEK_SET);
    } else {
      fseek(f, 0, SEEK_SET);
    }
  }
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  if ((size_t)want == n) {
    char *nl = strchr(buf, '\n');
    if (nl != NULL) {
      memmove(buf, nl + 1, strlen(nl + 1) + 1);
    }
  }
  if (buf[0] == '\0') {
    snprintf(buf, cap, "(log is empty)");
  }
}

static void describe_status(int status, char *buf, size_t cap) {
  if (WIFEXITED(status)) {
    snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    snprintf(buf, cap, "was killed by signal %d", WTERMSIG(status));
  } else {
    snprintf(buf, cap, "stopped (wait status %#x)", (unsigned)status);
  }
}

/* --- public --------------------------------------------------------------- */

authsrv_status_t authsrv_start(authsrv_t **out) {
  return authsrv_start_extra(NULL, NULL, out);
}

authsrv_status_t authsrv_start_extra(const char *zone, const char *path,
                                     authsrv_t **out) {
  last_error[0] = '\0';
  if (out == NULL) {
    set_error("authsrv_start: out is NULL");
    return AUTHSRV_FAILED;
  }
  authsrv_t *srv = calloc(1, sizeof(*srv));
  if (srv == NULL) {
    set_error("out of memory");
    return AUTHSRV_FAILED;
  }
  srv->pid = -1;
  if (zone != NULL && path != NULL) {
    if (strlen(zone) >= sizeof(srv->extra_name) ||
        strlen(path) >= sizeof(srv->extra_path)) {
      set_error("authsrv_start_extra: zone name or path too long");
      free(srv);
      return AUTHSRV_FAILED;
    }
    snprintf(srv->extra_name, sizeof(srv->extra_name), "%s", zone);
    snprintf(srv->extra_path, sizeof(srv->extra_path), "%s", path);
  }
  if (!find_nsd(srv->nsd, sizeof(srv->nsd))) {
    set_error("%s", AUTHSRV_SKIP_LINE);
    free(srv);
    return AUTHSRV_NOT_INSTALLED;
  }
  if (!make_dir(srv) || !copy_zones(srv)) {
    goto fail;
  }
  srv->has_ipv6 = ipv6_usable();

  for (int attempt = 1;; attempt++) {
    if (!pick_port(srv->has_ipv6, &srv->port) || !write_conf(srv) ||
        !spawn(srv)) {
      goto fail;
    }
    readiness_t r = wait_ready(srv);
    if (r == READY) {
      *out = srv;
      return AUTHSRV_OK;
    }
    char what[128];
    if (r == EXITED) {
      describe_status(reap(srv), what, sizeof(what));
      if (attempt < START_ATTEMPTS) {
        continue;
      }
    } else {
      stop(srv);
      snprintf(what, sizeof(what), "did not answer an SOA query within %d ms",
               READY_TIMEOUT_MS);
    }
    char tail[LOG_TAIL_BYTES + 1];
    log_tail(srv, tail, sizeof(tail));
    /* The log itself goes away with the directory: its tail is kept. */
    set_error("%s (port %u, attempt %d of %d) %s; last lines of its log:\n%s",
              srv->nsd, (unsigned)srv->port, attempt, START_ATTEMPTS, what,
              tail);
    goto fail;
  }

fail:
  authsrv_stop_free(srv);
  return AUTHSRV_FAILED;
}

uint16_t authsrv_port(const authsrv_t *srv) {
  return srv->port;
}

bool authsrv_has_ipv6(const authsrv_t *srv) {
  return srv->has_ipv6;
}

bool authsrv_addr(const authsrv_t *srv, int family,
                  struct sockaddr_storage *addr, socklen_t *addrlen) {
  if (family == AF_INET6 && !srv->has_ipv6) {
    return false;
  }
  return dnsq_loopback(family, srv->port, addr, addrlen) == DT_OK;
}

const char *authsrv_dir(const authsrv_t *srv) {
  return srv->dir;
}

void authsrv_stop_free(authsrv_t *srv) {
  if (srv == NULL) {
    return;
  }
  stop(srv);
  if (srv->dir[0] != '\0') {
    remove_tree(srv->dir, 0);
  }
  free(srv);
}
