/* dtdial as a user runs it: timeline, JSON, exit codes, against loopback
 * listeners and the fake DNS server. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dialtone.h"
#include "fake/fakedns.h"

static fakedns_t *srv;
static char server[32];
static int good = -1;    /* listener on 127.0.0.1:port */
static int closed6 = -1; /* [::1]:port bound, not listening: refuses */
static uint16_t port;
static char port_s[8];

/* Runs dtdial with args; returns its exit code, stdout in out, stderr in
 * err. */
static int run(char *out, size_t outlen, char *err, size_t errlen,
               const char *const *args) {
  int po[2], pe[2];
  assert_int_equal(pipe(po), 0);
  assert_int_equal(pipe(pe), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]);
    close(pe[0]);
    char *argv[32];
    size_t n = 0;
    argv[n++] = (char *)DT_BUILDDIR "/tools/dtdial";
    for (; args[n - 1] != NULL && n < 31; n++) {
      argv[n] = (char *)args[n - 1];
    }
    argv[n] = NULL;
    execv(argv[0], argv);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  /* Outputs are small: reading one pipe to the end, then the other,
   * cannot block the child on a full pipe. */
  size_t got = 0, egot = 0;
  ssize_t k;
  while ((k = read(po[0], out + got, outlen - 1 - got)) > 0) {
    got += (size_t)k;
  }
  out[got] = '\0';
  while ((k = read(pe[0], err + egot, errlen - 1 - egot)) > 0) {
    egot += (size_t)k;
  }
  err[egot] = '\0';
  close(po[0]);
  close(pe[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char out[65536], err[4096];

static int setup(void **state) {
  (void)state;
  if (fakedns_new(NULL, &srv) != DT_OK) {
    return -1;
  }
  fakedns_add(srv, "dtdial.test. 60 IN SOA ns.dtdial.test. a.dtdial.test. "
                   "1 7200 900 86400 60");
  fakedns_add(srv, "v4.dtdial.test. 60 IN A 127.0.0.1");
  fakedns_add(srv, "dual.dtdial.test. 60 IN AAAA ::1");
  fakedns_add(srv, "dual.dtdial.test. 60 IN A 127.0.0.1");
  if (fakedns_start(srv) != DT_OK) {
    return -1;
  }
  snprintf(server, sizeof(server), "127.0.0.1#%u", fakedns_port(srv));
  /* The same port: refused on ::1 (when IPv6 is there), open on
   * 127.0.0.1. */
  for (int tries = 0; tries < 50 && good < 0; tries++) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof(a);
    closed6 = socket(AF_INET6, SOCK_STREAM, 0);
    if (closed6 < 0 || bind(closed6, (struct sockaddr *)&a, len) != 0) {
      if (closed6 >= 0) {
        close(closed6);
      }
      closed6 = -1; /* no IPv6: any free port will do */
      if (dt_listen(NULL, "127.0.0.1", 0, &good) != DT_OK ||
          dt_listen_get_port(good, &port) != DT_OK) {
        return -1;
      }
      break;
    }
    getsockname(closed6, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin6_port);
    if (dt_listen(NULL, "127.0.0.1", port, &good) != DT_OK) {
      close(closed6);
      good = -1;
    }
  }
  snprintf(port_s, sizeof(port_s), "%u", port);
  return good >= 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  close(good);
  if (closed6 >= 0) {
    close(closed6);
  }
  return 0;
}

static void test_json_literal(void **state) {
  (void)state;
  const char *args[] = {"--json", "127.0.0.1", port_s, NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), args), 0);
  char want[96];
  snprintf(want, sizeof(want),
           "{\"connected\": \"127.0.0.1#%s\", "
           "\"family\": \"inet\", \"status\": \"DT_OK\"",
           port_s);
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "\"dns_us\": 0, \"connect_us\": "));
  assert_non_null(strstr(out, "\"total_us\": "));
  snprintf(
      want, sizeof(want),
      "\"attempts\": [{\"addr\": \"127.0.0.1#%s\", \"start_us\": ", port_s);
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "\"result\": \"connected\"}]}\n"));
  /* One object, one line. */
  assert_int_equal(out[0], '{');
  assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
  assert_string_equal(err, "");
}

/* A name through the fake server: ::1 refuses, 127.0.0.1 connects. */
static void test_json_name(void **state) {
  (void)state;
  const char *args[] = {"--json", "--server",         server, "--hosts",
                        "",       "dual.dtdial.test", port_s, NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), args), 0);
  char want[160];
  snprintf(want, sizeof(want), "\"connected\": \"127.0.0.1#%s\"", port_s);
  assert_non_null(strstr(out, want));
  if (closed6 >= 0) {
    snprintf(want, sizeof(want),
             "\"attempts\": [{\"addr\": \"::1#%s\", \"start_us\": ", port_s);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"result\": \"refused\", \"error\": "
                                "\"connection refused\"}, {\"addr\": "
                                "\"127.0.0.1#"));
  }
  assert_non_null(strstr(out, "\"a\": {\"asked\": true, \"done\": true, "
                              "\"status\": \"DT_OK\", \"addresses\": 1, "
                              "\"source\": \"dns\""));
}

static void test_timeline(void **state) {
  (void)state;
  const char *args[] = {"--server",       server, "--hosts", "",
                        "v4.dtdial.test", port_s, NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), args), 0);
  char want[96];
  assert_non_null(strstr(out, " ms  Looking up AAAA v4.dtdial.test\n"));
  assert_non_null(strstr(out, " ms  Looking up A v4.dtdial.test\n"));
  assert_non_null(strstr(out, " ms  A: 1 address (dns)\n"));
  assert_non_null(strstr(out, " ms  AAAA: name has no records"));
  snprintf(want, sizeof(want), " ms  Trying 127.0.0.1#%s...\n", port_s);
  assert_non_null(strstr(out, want));
  snprintf(want, sizeof(want), " ms  Connected to 127.0.0.1#%s\n", port_s);
  assert_non_null(strstr(out, want));
  snprintf(want, sizeof(want), "Connected to 127.0.0.1#%s (inet): lookup ",
           port_s);
  assert_non_null(strstr(out, want));
  assert_int_equal(strncmp(out, "*      0.", 9), 0);
}

static void test_failures(void **state) {
  (void)state;
  /* Refused: exit 3, why on stderr, null winner in JSON. */
  int fd = -1;
  uint16_t p;
  assert_int_equal(dt_listen(NULL, "127.0.0.1", 0, &fd), DT_OK);
  assert_int_equal(dt_listen_get_port(fd, &p), DT_OK);
  close(fd);
  char ps[8];
  snprintf(ps, sizeof(ps), "%u", p);
  const char *refused[] = {"--json", "127.0.0.1", ps, NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), refused), 3);
  assert_non_null(strstr(out, "{\"connected\": null, \"family\": null, "
                              "\"status\": \"DT_ECONNREFUSED\", \"error\": "
                              "\"connection refused\""));
  assert_non_null(strstr(out, "\"result\": \"refused\""));
  char want[96];
  snprintf(want, sizeof(want),
           "dtdial: 127.0.0.1 port %s: connection refused\n", ps);
  assert_string_equal(err, want);
  const char *refused_text[] = {"127.0.0.1", ps, NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), refused_text), 3);
  assert_non_null(strstr(out, " ms  Failed: connection refused\n"));

  /* No such name: exit 2. */
  const char *nx[] = {"--server",         server, "--hosts", "",
                      "nope.dtdial.test", "80",   NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), nx), 2);
  assert_non_null(strstr(err, "nope.dtdial.test port 80: no such name"));
}

static void test_unix(void **state) {
  (void)state;
  char dir[] = "/tmp/dt-test-dtdial-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], arg[140];
  snprintf(path, sizeof(path), "%s/s.sock", dir);
  snprintf(arg, sizeof(arg), "unix:%s", path);
  const char *args[] = {"--json", arg, NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), args), 3);
  assert_non_null(strstr(out, "\"result\": \"no-such-file\""));
  int l = -1;
  assert_int_equal(dt_listen_unix(NULL, path, &l), DT_OK);
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), args), 0);
  char want[200];
  snprintf(want, sizeof(want), "{\"connected\": \"%s\", \"family\": \"unix\"",
           arg);
  assert_non_null(strstr(out, want));
  close(l);
  unlink(path);
  rmdir(dir);
}

static void test_usage(void **state) {
  (void)state;
  static const char *const cases[][6] = {
      {NULL},
      {"127.0.0.1", NULL},
      {"127.0.0.1", "0", NULL},
      {"127.0.0.1", "65536", NULL},
      {"127.0.0.1", "80", "extra", NULL},
      {"--bogus", "127.0.0.1", "80", NULL},
      {"--timeout", "0", "127.0.0.1", "80", NULL},
      {"--server", "127.0.0.1#99999", "x.test", "80", NULL},
      {"unix:/tmp/x", "80", NULL},
      {"bad..name", "80", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(run(out, sizeof(out), err, sizeof(err), cases[i]), 1);
    assert_true(strncmp(err, "dtdial: ", 8) == 0);
    assert_string_equal(out, "");
  }
  char longp[300] = "unix:/";
  memset(longp + 6, 'x', 200);
  longp[206] = '\0';
  const char *toolong[] = {longp, NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), toolong), 1);
  assert_non_null(strstr(err, "name or path too long"));
  const char *help[] = {"--help", NULL};
  assert_int_equal(run(out, sizeof(out), err, sizeof(err), help), 0);
  assert_non_null(strstr(out, "usage: dtdial"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_literal), cmocka_unit_test(test_json_name),
      cmocka_unit_test(test_timeline),     cmocka_unit_test(test_failures),
      cmocka_unit_test(test_unix),         cmocka_unit_test(test_usage),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
