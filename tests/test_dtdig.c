/* dtdig as a user runs it: its output formats and exit codes, against the
 * fake DNS server. */
#include "config.h"

#include <errno.h>
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
static char port[16];

/* Runs dtdig with args; returns its exit code and its stdout (and stderr
 * when err is set) in out. */
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
    argv[n++] = (char *)DT_BUILDDIR "/tools/dtdig";
    for (; args[n - 1] != NULL && n < 31; n++) {
      argv[n] = (char *)args[n - 1];
    }
    argv[n] = NULL;
    execv(argv[0], argv);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  size_t got = 0, egot = 0;
  for (;;) {
    ssize_t k = read(po[0], out + got, outlen - 1 - got);
    if (k <= 0) {
      break;
    }
    got += (size_t)k;
  }
  out[got] = '\0';
  char ebuf[4096];
  if (err == NULL) {
    err = ebuf;
    errlen = sizeof(ebuf);
  }
  for (;;) {
    ssize_t k = read(pe[0], err + egot, errlen - 1 - egot);
    if (k <= 0) {
      break;
    }
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

static int setup(void **state) {
  (void)state;
  if (fakedns_new(NULL, &srv) != DT_OK) {
    return -1;
  }
  fakedns_add(srv, "www.dig.test. 300 IN A 192.0.2.1");
  fakedns_add(srv, "www.dig.test. 300 IN AAAA 2001:db8::1");
  fakedns_add(srv, "mx.dig.test. 300 IN MX 10 mail.dig.test.");
  fakedns_add(srv, "txt.dig.test. 300 IN TXT \"quote \\\" and back\\\\slash\"");
  fakedns_add(srv, "dig.test. 300 IN SOA ns.dig.test. a.dig.test. 1 2 3 4 60");
  fakedns_add(srv, "1.2.0.192.in-addr.arpa. 300 IN PTR www.dig.test.");
  fakedns_add(srv, "short.dig.test. 1 IN A 192.0.2.5");
  fakedns_add(srv, "cached.dig.test. 300 IN A 192.0.2.6");
  fakedns_add(srv, "abcdefghijklmnopqrstuvwxyzabcde.dig.test. 300 IN A "
                   "192.0.2.7");
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.black_hole = true;
  fakedns_set_behaviour(srv, "hole.dig.test", 0, &b);
  fakedns_behaviour_init(&b);
  b.rcode = 2;
  fakedns_set_behaviour(srv, "fail.dig.test", 0, &b);
  /* A spoof with the question in lower case: with +0x20, dropped. */
  fakedns_behaviour_init(&b);
  b.lower_question = true;
  b.spoof_rr = "x 300 IN A 192.0.2.66";
  fakedns_set_behaviour(srv, "abcdefghijklmnopqrstuvwxyzabcde.dig.test", 0, &b);
  if (fakedns_start(srv) != DT_OK) {
    return -1;
  }
  snprintf(port, sizeof(port), "%u", (unsigned)fakedns_port(srv));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  return 0;
}

static char out[65536];

static void test_default_output(void **state) {
  (void)state;
  const char *args[] = {"@127.0.0.1", "-p", port, "www.dig.test", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, args), 0);
  assert_non_null(strstr(out, "status: NOERROR"));
  assert_non_null(strstr(out, ";; QUESTION SECTION:"));
  assert_non_null(strstr(out, ";; ANSWER SECTION:\nwww.dig.test.\t300\tIN\tA\t"
                              "192.0.2.1\n"));
  assert_non_null(strstr(out, ";; Query time: "));
  char server[64];
  snprintf(server, sizeof(server), ";; SERVER: 127.0.0.1#%s(udp)", port);
  assert_non_null(strstr(out, server));
  assert_non_null(strstr(out, ";; CACHE: miss"));

  const char *nx[] = {"@127.0.0.1", "-p", port, "nope.dig.test", "AAAA", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, nx), 0);
  assert_non_null(strstr(out, "status: NXDOMAIN"));
  assert_non_null(strstr(out, ";; AUTHORITY SECTION:\ndig.test."));

  const char *tcp[] = {"@127.0.0.1",  "-p", port, "+tcp",
                       "mx.dig.test", "MX", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, tcp), 0);
  assert_non_null(strstr(out, "(tcp)"));
  assert_non_null(strstr(out, "10 mail.dig.test."));
}

static void test_short_and_reverse(void **state) {
  (void)state;
  const char *args[] = {"@127.0.0.1", "-p",        port, "+short",
                        "-x",         "192.0.2.1", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, args), 0);
  assert_string_equal(out, "www.dig.test.\n");
  const char *aaaa[] = {"@127.0.0.1", "-p",     port, "www.dig.test",
                        "aaaa",       "+short", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, aaaa), 0);
  assert_string_equal(out, "2001:db8::1\n");
}

/* One JSON object per query per line, with the fields the man page names. */
static void test_0x20(void **state) {
  (void)state;
  const char *args[] = {"@127.0.0.1",
                        "-p",
                        port,
                        "+short",
                        "abcdefghijklmnopqrstuvwxyzabcde.dig.test",
                        NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, args), 0);
  assert_string_equal(out, "192.0.2.66\n"); /* case ignored: spoof taken */
  const char *mixed[] = {
      "@127.0.0.1", "-p",    port,
      "+short",     "+0x20", "abcdefghijklmnopqrstuvwxyzabcde.dig.test",
      NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, mixed), 0);
  assert_string_equal(out, "192.0.2.7\n");
}

static void test_json_and_repeats(void **state) {
  (void)state;
  const char *args[] = {"@127.0.0.1", "-p",           port,  "-n", "3",
                        "+json",      "txt.dig.test", "TXT", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, args), 0);
  int lines = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    lines++;
    assert_true(line[0] == '{' && line[strlen(line) - 1] == '}');
    assert_non_null(strstr(line, "\"name\":\"txt.dig.test\""));
    assert_non_null(strstr(line, "\"type\":\"TXT\""));
    assert_non_null(strstr(line, "\"status\":\"NOERROR\""));
    assert_non_null(strstr(line, "\"answers\":[{\"name\":\"txt.dig.test.\","
                                 "\"type\":\"TXT\",\"ttl\":"));
    /* Quotes and backslashes of the data are escaped for JSON. */
    assert_non_null(strstr(
        line, "\"data\":\"\\\"quote \\\\\\\" and back\\\\\\\\slash\\\"\""));
    /* The first is asked; the repeats are answered by the cache. */
    if (lines == 1) {
      assert_non_null(strstr(line, "\"cache\":\"miss\""));
      assert_non_null(strstr(line, "\"server\":\"127.0.0.1#"));
    } else {
      assert_non_null(strstr(line, "\"cache\":\"hit\""));
      assert_non_null(strstr(line, "\"server\":\"cache\""));
    }
    assert_non_null(strstr(line, "\"time_us\":"));
  }
  assert_int_equal(lines, 3);
  assert_int_equal(fakedns_count(srv, "txt.dig.test", DT_TYPE_TXT, FAKEDNS_UDP),
                   1);

  const char *fail[] = {"@127.0.0.1",    "-p", port, "+json",
                        "fail.dig.test", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, fail), 0);
  assert_non_null(strstr(out, "\"status\":\"SERVFAIL\""));
  assert_non_null(strstr(out, "\"answers\":[]"));
}

/* Repeats within the TTL are cache hits; past it the name is asked again. */
static void test_repeats_hit_the_cache(void **state) {
  (void)state;
  const char *args[] = {"@127.0.0.1", "-p",    port,     "-n",
                        "3",          "+json", "+cache", "cached.dig.test",
                        NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, args), 0);
  assert_int_equal(
      fakedns_count(srv, "cached.dig.test", DT_TYPE_A, FAKEDNS_UDP), 1);
  char *first = strstr(out, "\"cache\":\"miss\"");
  assert_non_null(first);
  char *hit = strstr(first, "\"cache\":\"hit\"");
  assert_non_null(hit);
  assert_non_null(strstr(hit + 1, "\"cache\":\"hit\""));
  assert_non_null(
      strstr(out, "{\"cache_entries\":[{\"name\":\"cached.dig.test\""));

  const char *text[] = {"@127.0.0.1",      "-p", port, "-n", "2",
                        "cached.dig.test", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, text), 0);
  assert_non_null(strstr(out, ";; CACHE: hit"));
  assert_non_null(strstr(out, ";; SERVER: cache"));

  const char *past[] = {
      "@127.0.0.1",     "-p", port, "-n", "2", "+interval=1100", "+short",
      "short.dig.test", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, past), 0);
  assert_int_equal(fakedns_count(srv, "short.dig.test", DT_TYPE_A, FAKEDNS_UDP),
                   2);
  const char *nocache[] = {
      "@127.0.0.1",      "-p", port, "-n", "2", "+nocache", "+short",
      "cached.dig.test", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, nocache), 0);
  assert_int_equal(
      fakedns_count(srv, "cached.dig.test", DT_TYPE_A, FAKEDNS_UDP), 4);
}

static void test_no_reply_exit_9(void **state) {
  (void)state;
  const char *args[] = {
      "@127.0.0.1",    "-p", port, "+json", "+timeout=100", "+tries=1",
      "hole.dig.test", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, args), 9);
  assert_non_null(strstr(out, "\"status\":\"NOREPLY\""));
  assert_non_null(strstr(out, "\"answers\":[]"));
  const char *plain[] = {
      "@127.0.0.1",    "-p", port, "+timeout=100", "+tries=1",
      "hole.dig.test", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, plain), 9);
  assert_non_null(strstr(out, "no reply"));
}

/* Usage errors: exit 1, a message on stderr, and no query sent. */
static void test_usage_errors(void **state) {
  (void)state;
  static const char *const cases[][8] = {
      {NULL},
      {"@127.0.0.1", "-p", "0", "www.dig.test", NULL},
      {"@127.0.0.1", "-p", "70000", "www.dig.test", NULL},
      {"@127.0.0.1", "-p", NULL},
      {"-n", "0", "www.dig.test", NULL},
      {"-n", "x", "www.dig.test", NULL},
      {"+bogus", "www.dig.test", NULL},
      {"+timeout=0", "www.dig.test", NULL},
      {"+tries=abc", "www.dig.test", NULL},
      {"-q", "www.dig.test", NULL},
      {"www.dig.test", "NOTATYPE", NULL},
      {"a..b", NULL},
      {"-x", "not-an-address", NULL},
      {"@", "www.dig.test", NULL},
      {"@not-an-ip", "www.dig.test", NULL},
      {"www.dig.test", "A", "extra", NULL},
  };
  unsigned before = fakedns_total(srv, FAKEDNS_UDP);
  char err[4096];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(run(out, sizeof(out), err, sizeof(err), cases[i]), 1);
    assert_true(strncmp(err, "dtdig: ", 7) == 0);
  }
  assert_int_equal(fakedns_total(srv, FAKEDNS_UDP), before);
  const char *help[] = {"-h", NULL};
  assert_int_equal(run(out, sizeof(out), NULL, 0, help), 0);
  assert_non_null(strstr(out, "usage: dtdig"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_output),
      cmocka_unit_test(test_short_and_reverse),
      cmocka_unit_test(test_0x20),
      cmocka_unit_test(test_json_and_repeats),
      cmocka_unit_test(test_repeats_hit_the_cache),
      cmocka_unit_test(test_no_reply_exit_9),
      cmocka_unit_test(test_usage_errors),
  };
  return cmocka_run_group_tests_name("dtdig", tests, setup, teardown);
}
