#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "benchutil.h"

int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a;
  int64_t y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int64_t bench_pct(const int64_t *v, size_t n, double p) {
  size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
  if (rank < 1) {
    rank = 1;
  }
  if (rank > n) {
    rank = n;
  }
  return v[rank - 1];
}

const char *bench_glibc_unusable(const char *server) {
  static char why[400];
  char host[INET6_ADDRSTRLEN + 8];
  const char *s = server;
  const char *port;
  size_t hl;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    hl = end != NULL ? (size_t)(end - s - 1) : 0;
    s++;
    port = end != NULL && end[1] == ':' ? end + 2 : "53";
  } else {
    const char *c = strrchr(s, ':');
    hl = c != NULL ? (size_t)(c - s) : strlen(s);
    port = c != NULL ? c + 1 : "53";
  }
  if (hl == 0 || hl >= sizeof(host) || strcmp(port, "53") != 0) {
    snprintf(why, sizeof(why),
             "SKIP glibc: it only talks to port 53, the server is %s", server);
    return why;
  }
  memcpy(host, s, hl);
  host[hl] = '\0';
  unsigned char want[16], got[16];
  int family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
  if (inet_pton(family, host, want) != 1) {
    snprintf(why, sizeof(why), "SKIP glibc: cannot read the server %s", server);
    return why;
  }
  FILE *f = fopen("/etc/resolv.conf", "r");
  char line[512];
  char first[INET6_ADDRSTRLEN + 1] = "";
  while (f != NULL && first[0] == '\0' && fgets(line, sizeof(line), f)) {
    char word[16];
    char addr[INET6_ADDRSTRLEN + 1];
    if (sscanf(line, " %15s %46s", word, addr) == 2 &&
        strcmp(word, "nameserver") == 0) {
      strcpy(first, addr);
    }
  }
  if (f != NULL) {
    fclose(f);
  }
  if (first[0] == '\0' || inet_pton(family, first, got) != 1 ||
      memcmp(want, got, family == AF_INET ? 4 : 16) != 0) {
    snprintf(why, sizeof(why),
             "SKIP glibc: /etc/resolv.conf does not name %s first (needs "
             "unshare -mn, root: see bench/run-bench.sh)",
             host);
    return why;
  }
  return NULL;
}
