/* dtdig: a dig-like query tool over dialtone's resolver, showing where an
 * answer came from (server or cache) and how long it took. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dialtone.h"
#include "toolutil.h"
#include "dtdig_args.h"

enum {
  EXIT_REPLY = 0,
  EXIT_USAGE = 1,
  EXIT_NOREPLY = 9,
  EXIT_INTERNAL = 10,
};

static void usage(FILE *fp) {
  fprintf(fp, "usage: dtdig [@SERVER]... [-p PORT] [-x ADDR] [-n COUNT] "
              "[-r RESOLV_CONF]\n"
              "             [+tcp] [+short] [+json] [+nocache] [+search] "
              "[+timeout=MS]\n"
              "             [+tries=N] [+interval=MS] [+0x20] NAME [TYPE]\n");
}

static void format_server(const dt_answer_t *a, char *buf, size_t len) {
  char host[INET6_ADDRSTRLEN] = "-";
  unsigned port = 0;
  if (a->server.ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->server;
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
    port = ntohs(v4->sin_port);
  } else if (a->server.ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->server;
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    port = ntohs(v6->sin6_port);
  }
  if (port == 0) {
    snprintf(buf, len, "%s", a->from_cache ? "cache" : "-");
  } else {
    snprintf(buf, len, "%s#%u", host, port);
  }
}

static const char *status_word(const dt_answer_t *a, char *buf, size_t len) {
  return dt_rcode_tostr(a->rcode, buf, len);
}

static void print_flags(const dt_answer_t *a) {
  printf(";; flags: qr");
  if (a->flags & DT_FLAG_AA) {
    printf(" aa");
  }
  if (a->flags & DT_FLAG_TC) {
    printf(" tc");
  }
  if (a->flags & DT_FLAG_RD) {
    printf(" rd");
  }
  if (a->flags & DT_FLAG_RA) {
    printf(" ra");
  }
  if (a->flags & DT_FLAG_AD) {
    printf(" ad");
  }
  if (a->flags & DT_FLAG_CD) {
    printf(" cd");
  }
  printf("; QUERY: 1, ANSWER: %zu, AUTHORITY: %zu\n", a->nanswer,
         a->nauthority);
}

static void print_section(const char *title, const dt_rr_t *rrs, size_t n) {
  if (n == 0) {
    return;
  }
  printf("\n;; %s SECTION:\n", title);
  for (size_t i = 0; i < n; i++) {
    char line[8192];
    dt_rr_tostr(&rrs[i], line, sizeof(line));
    printf("%s\n", line);
  }
}

static void print_answer(const dtdig_args_t *args, const char *qname,
                         uint16_t qtype, const dt_answer_t *a, uint64_t us) {
  char tbuf[32], rbuf[32], server[INET6_ADDRSTRLEN + 16];
  const char *tname = dt_type_tostr(qtype, tbuf, sizeof(tbuf));
  format_server(a, server, sizeof(server));
  if (args->json) {
    printf("{\"name\":");
    tool_json_string(qname);
    printf(",\"type\":");
    tool_json_string(tname);
    printf(",\"status\":");
    tool_json_string(status_word(a, rbuf, sizeof(rbuf)));
    printf(",\"answers\":[");
    for (size_t i = 0; i < a->nanswer; i++) {
      const dt_rr_t *rr = &a->answer[i];
      char b[32];
      printf("%s{\"name\":", i ? "," : "");
      tool_json_string(rr->owner);
      printf(",\"type\":");
      tool_json_string(dt_type_tostr(rr->type, b, sizeof(b)));
      printf(",\"ttl\":%u,\"data\":", (unsigned)rr->ttl);
      tool_json_string(rr->data);
      printf("}");
    }
    printf("],\"cache\":\"%s\",\"time_us\":%llu,\"server\":",
           a->from_cache ? "hit" : "miss", (unsigned long long)us);
    tool_json_string(server);
    printf("}\n");
    return;
  }
  if (args->short_out) {
    for (size_t i = 0; i < a->nanswer; i++) {
      printf("%s\n", a->answer[i].data);
    }
    return;
  }
  printf("; <<>> dtdig %s <<>> %s %s\n", dt_version(), qname, tname);
  printf(";; ->>HEADER<<- opcode: QUERY, status: %s\n",
         status_word(a, rbuf, sizeof(rbuf)));
  print_flags(a);
  printf("\n;; QUESTION SECTION:\n;%s\t\t\tIN\t%s\n", a->qname, tname);
  print_section("ANSWER", a->answer, a->nanswer);
  print_section("AUTHORITY", a->authority, a->nauthority);
  printf("\n;; Query time: %llu.%03llu ms\n", (unsigned long long)(us / 1000),
         (unsigned long long)(us % 1000));
  if (a->from_cache) {
    printf(";; SERVER: cache\n");
  } else {
    printf(";; SERVER: %s(%s)\n", server,
           a->transport == DT_TRANSPORT_TCP ? "tcp" : "udp");
  }
  printf(";; CACHE: %s, ttl %u s%s\n\n", a->from_cache ? "hit" : "miss",
         (unsigned)a->ttl, a->stale ? " (stale)" : "");
}

static void print_noreply(const dtdig_args_t *args, const char *qname,
                          uint16_t qtype, dt_status_t st, uint64_t us) {
  char tbuf[32];
  const char *tname = dt_type_tostr(qtype, tbuf, sizeof(tbuf));
  if (args->json) {
    printf("{\"name\":");
    tool_json_string(qname);
    printf(",\"type\":");
    tool_json_string(tname);
    printf(",\"status\":\"NOREPLY\",\"answers\":[],\"cache\":\"miss\","
           "\"time_us\":%llu,\"server\":null,\"error\":",
           (unsigned long long)us);
    tool_json_string(dt_strerror(st));
    printf("}\n");
    return;
  }
  printf(";; no reply for %s %s: %s\n", qname, tname, dt_strerror(st));
}

typedef struct {
  bool json;
  int n;
} dump_ctx_t;

static void dump_entry(const dt_cache_entry_t *e, void *ctx) {
  dump_ctx_t *d = ctx;
  char tbuf[32], rbuf[32];
  const char *type = dt_type_tostr(e->type, tbuf, sizeof(tbuf));
  const char *rcode = dt_rcode_tostr(e->rcode, rbuf, sizeof(rbuf));
  if (d->json) {
    printf("%s{\"name\":", d->n ? "," : "");
    tool_json_string(e->name);
    printf(",\"type\":\"%s\",\"ttl\":%u,\"negative\":%s,\"stale\":%s,"
           "\"status\":\"%s\",\"bytes\":%zu}",
           type, (unsigned)e->remaining_s, e->negative ? "true" : "false",
           e->stale ? "true" : "false", rcode, e->bytes);
  } else {
    printf(";%s.\t%u\t%s\t%s%s\t%zu bytes\n", e->name, (unsigned)e->remaining_s,
           type,
           e->negative ? (e->rcode == DT_RCODE_NXDOMAIN ? "NXDOMAIN" : "NODATA")
                       : "answer",
           e->stale ? " (stale)" : "", e->bytes);
  }
  d->n++;
}

static void dump_cache(dt_resolver_t *r, bool json) {
  dump_ctx_t d = {json, 0};
  dt_cache_stats_t st;
  dt_cache_get_stats(r, &st);
  if (json) {
    printf("{\"cache_entries\":[");
    dt_cache_list(r, dump_entry, &d);
    printf("],\"hits\":%llu,\"misses\":%llu}\n", (unsigned long long)st.hits,
           (unsigned long long)st.misses);
    return;
  }
  printf(";; CACHE ENTRIES (%llu, %llu bytes; %llu hits, %llu misses):\n",
         (unsigned long long)st.entries, (unsigned long long)st.bytes,
         (unsigned long long)st.hits, (unsigned long long)st.misses);
  dt_cache_list(r, dump_entry, &d);
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int main(int argc, char **argv) {
  dtdig_args_t args;
  char err[256];
  if (!dtdig_parse_args(argc, argv, &args, err, sizeof(err))) {
    if (strcmp(err, "help") == 0) {
      usage(stdout);
      return EXIT_REPLY;
    }
    fprintf(stderr, "dtdig: %s\n", err);
    usage(stderr);
    return EXIT_USAGE;
  }

  char rev[128];
  const char *qname = args.name;
  uint16_t qtype = DT_TYPE_A;
  if (args.reverse != NULL) {
    dt_status_t st = dt_name_reverse(args.reverse, rev, sizeof(rev));
    if (st != DT_OK) {
      fprintf(stderr, "dtdig: -x %s: not an IPv4 or IPv6 address\n",
              args.reverse);
      return EXIT_USAGE;
    }
    qname = rev;
    qtype = DT_TYPE_PTR;
  }
  if (args.type_str != NULL &&
      dt_type_fromstr(args.type_str, &qtype) != DT_OK) {
    fprintf(stderr, "dtdig: unknown record type '%s'\n", args.type_str);
    return EXIT_USAGE;
  }
  char norm[DT_NAME_BUFSIZE];
  if (dt_name_normalize(qname, norm, sizeof(norm)) != DT_OK) {
    fprintf(stderr, "dtdig: invalid name '%s'\n", qname);
    return EXIT_USAGE;
  }

  char server_buf[DTDIG_MAX_SERVERS][128];
  const char *servers[DTDIG_MAX_SERVERS];
  for (size_t i = 0; i < args.nservers; i++) {
    if (!dtdig_server_with_port(args.servers[i], args.port, server_buf[i],
                                sizeof(server_buf[i]))) {
      fprintf(stderr, "dtdig: server '%s' too long\n", args.servers[i]);
      return EXIT_USAGE;
    }
    servers[i] = server_buf[i];
  }
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = servers;
  o.nservers = args.nservers;
  if (args.resolv_conf != NULL) {
    o.resolv_conf = args.resolv_conf;
  }
  o.hosts = "";
  o.dns0x20 = args.dns0x20;
  if (args.timeout_ms > 0) {
    o.timeout_ms = (int)args.timeout_ms;
  }
  if (args.tries > 0) {
    o.attempts = (int)args.tries;
  }
  dt_resolver_t *r = NULL;
  dt_status_t st = dt_resolver_new(&o, &r);
  if (st == DT_EINVAL) {
    fprintf(stderr, "dtdig: bad server address or option\n");
    return EXIT_USAGE;
  }
  if (st != DT_OK) {
    fprintf(stderr, "dtdig: cannot set up the resolver: %s\n", dt_strerror(st));
    return EXIT_INTERNAL;
  }

  unsigned flags = (args.tcp ? DT_QUERY_TCP : 0) |
                   (args.nocache ? DT_QUERY_NOCACHE : 0) |
                   (args.search ? 0 : DT_QUERY_NOSEARCH);
  int rc = EXIT_REPLY;
  for (unsigned long i = 0; i < args.count; i++) {
    if (i > 0 && args.interval_ms > 0) {
      sleep_ms(args.interval_ms);
    }
    dt_answer_t *a = NULL;
    uint64_t t0 = now_us();
    st = dt_resolver_query(r, qname, qtype, flags, -1, &a);
    uint64_t us = now_us() - t0;
    if (st == DT_OK) {
      print_answer(&args, qname, qtype, a, us);
      dt_answer_free(a);
    } else if (st == DT_ETIMEDOUT || st == DT_ECONNREFUSED ||
               st == DT_ENETUNREACH || st == DT_EHOSTUNREACH ||
               st == DT_ECONNRESET || st == DT_EBADREPLY) {
      print_noreply(&args, qname, qtype, st, us);
      rc = EXIT_NOREPLY;
    } else {
      fprintf(stderr, "dtdig: %s %s: %s\n", qname,
              args.type_str ? args.type_str : "A", dt_strerror(st));
      rc = EXIT_INTERNAL;
    }
    fflush(stdout);
  }
  if (args.dump_cache) {
    dump_cache(r, args.json);
  }
  dt_resolver_free(r);
  return rc;
}
