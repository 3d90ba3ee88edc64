/* dtdial: connects to a host the way dialtone's dialer does and shows the
 * Happy Eyeballs race: lookups, every attempt with its times, the winner. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dialtone.h"
#include "toolutil.h"

enum {
  EXIT_CONNECTED = 0,
  EXIT_USAGE = 1,
  EXIT_NOADDRESS = 2, /* the name did not resolve */
  EXIT_NOCONNECT = 3, /* addresses, but no connection */
  EXIT_INTERNAL = 10,
};

#define MAX_SERVERS 8

typedef struct {
  const char *servers[MAX_SERVERS];
  size_t nservers;
  const char *hosts;
  const char *host;
  unsigned long port;
  long timeout_ms, attempt_delay_ms, resolution_delay_ms;
  int family;
  bool json;
} dtdial_args_t;

static void usage(FILE *fp) {
  fprintf(fp, "usage: dtdial [--server ADDR[#PORT]]... [--hosts FILE] [-4|-6] "
              "[--json]\n"
              "              [--timeout MS] [--attempt-delay MS] "
              "[--resolution-delay MS]\n"
              "              HOST PORT\n"
              "       dtdial [--json] [--timeout MS] unix:PATH\n");
}

/* Parses the command line; on error writes a message to err and returns
 * false. Nothing is dialed before the whole line has been accepted. */
static bool parse_args(int argc, char **argv, dtdial_args_t *a, char *err,
                       size_t errlen) {
  memset(a, 0, sizeof(*a));
  a->timeout_ms = a->attempt_delay_ms = a->resolution_delay_ms = -1;
  a->family = AF_UNSPEC;
  const char *port = NULL;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    unsigned long v;
    if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
      snprintf(err, errlen, "help");
      return false;
    } else if (strcmp(s, "--json") == 0) {
      a->json = true;
    } else if (strcmp(s, "-4") == 0 || strcmp(s, "-6") == 0) {
      a->family = s[1] == '4' ? AF_INET : AF_INET6;
    } else if (strcmp(s, "--server") == 0 || strcmp(s, "--hosts") == 0 ||
               strcmp(s, "--timeout") == 0 ||
               strcmp(s, "--attempt-delay") == 0 ||
               strcmp(s, "--resolution-delay") == 0) {
      if (i + 1 >= argc) {
        snprintf(err, errlen, "option %s needs an argument", s);
        return false;
      }
      const char *arg = argv[++i];
      if (strcmp(s, "--server") == 0) {
        if (a->nservers == MAX_SERVERS) {
          snprintf(err, errlen, "at most %d servers", MAX_SERVERS);
          return false;
        }
        a->servers[a->nservers++] = arg;
      } else if (strcmp(s, "--hosts") == 0) {
        a->hosts = arg;
      } else if (!tool_parse_ulong(arg,
                                   strcmp(s, "--resolution-delay") == 0 ? 0 : 1,
                                   3600000, &v)) {
        snprintf(err, errlen, "bad %s '%s' (milliseconds)", s, arg);
        return false;
      } else if (strcmp(s, "--timeout") == 0) {
        a->timeout_ms = (long)v;
      } else if (strcmp(s, "--attempt-delay") == 0) {
        a->attempt_delay_ms = (long)v;
      } else {
        a->resolution_delay_ms = (long)v;
      }
    } else if (s[0] == '-' && s[1] != '\0') {
      snprintf(err, errlen, "unknown option '%s'", s);
      return false;
    } else if (a->host == NULL) {
      a->host = s;
    } else if (port == NULL) {
      port = s;
    } else {
      snprintf(err, errlen, "unexpected argument '%s'", s);
      return false;
    }
  }
  if (a->host == NULL) {
    snprintf(err, errlen, "missing HOST");
    return false;
  }
  if (strncmp(a->host, "unix:", 5) == 0) {
    if (port != NULL) {
      snprintf(err, errlen, "unix:PATH takes no PORT");
      return false;
    }
    return true;
  }
  if (port == NULL) {
    snprintf(err, errlen, "missing PORT");
    return false;
  }
  if (!tool_parse_ulong(port, 1, 65535, &a->port)) {
    snprintf(err, errlen, "bad port '%s' (1-65535)", port);
    return false;
  }
  return true;
}

/* "ADDR" or "ADDR#PORT" becomes the resolver's "ADDR:PORT" or
 * "[V6]:PORT". */
static bool server_arg(const char *s, char *out, size_t len) {
  char addr[128];
  const char *hash = strrchr(s, '#');
  size_t n = hash != NULL ? (size_t)(hash - s) : strlen(s);
  unsigned long port = 53;
  if (n == 0 || n >= sizeof(addr) ||
      (hash != NULL && !tool_parse_ulong(hash + 1, 1, 65535, &port))) {
    return false;
  }
  memcpy(addr, s, n);
  addr[n] = '\0';
  if (strchr(addr, ':') != NULL) {
    return snprintf(out, len, "[%s]:%lu", addr, port) < (int)len;
  }
  return snprintf(out, len, "%s:%lu", addr, port) < (int)len;
}

static const char *family_word(int family) {
  switch (family) {
  case AF_INET6:
    return "inet6";
  case AF_INET:
    return "inet";
  case AF_UNIX:
    return "unix";
  default:
    return NULL;
  }
}

/* One word per attempt outcome, for the JSON "result". */
static const char *result_word(dt_status_t st) {
  switch (st) {
  case DT_OK:
    return "connected";
  case DT_ECONNREFUSED:
    return "refused";
  case DT_ETIMEDOUT:
    return "timeout";
  case DT_ECANCELED:
    return "canceled";
  case DT_ENETUNREACH:
  case DT_EHOSTUNREACH:
    return "unreachable";
  case DT_ECONNRESET:
    return "reset";
  case DT_ENOENT:
    return "no-such-file";
  case DT_EACCES:
    return "denied";
  default:
    return "error";
  }
}

static const char *attempt_addr(const dt_dial_attempt_t *a, char *buf) {
  return dt_sockaddr_tostr((const struct sockaddr *)&a->addr, a->addrlen, buf,
                           DT_SOCKADDR_STRLEN);
}

/* The timeline, printed as the race runs. */
static void on_event(const dt_dial_event_t *ev, void *ctx) {
  (void)ctx;
  char addr[DT_SOCKADDR_STRLEN] = "";
  const char *rr = ev->family == AF_INET6 ? "AAAA" : "A";
  if (ev->addr != NULL) {
    dt_sockaddr_tostr(ev->addr, ev->addrlen, addr, sizeof(addr));
  }
  printf("* %10.3f ms  ", ev->elapsed_us / 1000.0);
  switch (ev->type) {
  case DT_DIAL_EV_LOOKUP_START:
    printf("Looking up %s %s\n", rr, ev->host);
    break;
  case DT_DIAL_EV_LOOKUP_DONE:
    if (ev->status == DT_OK) {
      printf("%s: %zu address%s (%s)\n", rr, ev->naddrs,
             ev->naddrs == 1 ? "" : "es", dt_dial_source_tostr(ev->source));
    } else {
      printf("%s: %s (%s)\n", rr, dt_strerror(ev->status),
             dt_dial_source_tostr(ev->source));
    }
    break;
  case DT_DIAL_EV_ATTEMPT_START:
    printf("Trying %s...\n", addr);
    break;
  case DT_DIAL_EV_ATTEMPT_DONE:
    if (ev->sockopt != NULL) {
      printf("%s: %s failed: %s\n", addr, ev->sockopt, dt_strerror(ev->status));
    } else {
      printf("%s: %s (%s)\n", addr, result_word(ev->status),
             dt_strerror(ev->status));
    }
    break;
  case DT_DIAL_EV_CONNECTED:
    printf("Connected to %s\n", addr);
    break;
  case DT_DIAL_EV_FAILED:
    printf("Failed: %s\n", dt_strerror(ev->status));
    break;
  }
  fflush(stdout);
}

static void json_lookup(const char *key, const dt_dial_lookup_t *l) {
  printf("\"%s\": {\"asked\": %s, \"done\": %s, \"status\": ", key,
         l->asked ? "true" : "false", l->done ? "true" : "false");
  tool_json_string(l->done ? dt_status_name(l->status) : NULL);
  printf(", \"addresses\": %zu, \"source\": ", l->naddrs);
  tool_json_string(dt_dial_source_tostr(l->source));
  printf(", \"end_us\": %llu}", (unsigned long long)l->end_us);
}

static void print_json(const dt_dial_report_t *r) {
  char buf[DT_SOCKADDR_STRLEN];
  fputs("{\"connected\": ", stdout);
  tool_json_string(r->winner >= 0 ? attempt_addr(&r->attempts[r->winner], buf)
                                  : NULL);
  fputs(", \"family\": ", stdout);
  tool_json_string(family_word(r->family));
  fputs(", \"status\": ", stdout);
  tool_json_string(dt_status_name(r->status));
  if (r->status != DT_OK) {
    fputs(", \"error\": ", stdout);
    tool_json_string(dt_strerror(r->status));
  }
  printf(", \"dns_us\": %llu, \"connect_us\": %llu, \"total_us\": %llu, ",
         (unsigned long long)r->dns_us, (unsigned long long)r->connect_us,
         (unsigned long long)r->total_us);
  fputs("\"lookups\": {", stdout);
  json_lookup("aaaa", &r->aaaa);
  fputs(", ", stdout);
  json_lookup("a", &r->a);
  fputs("}, \"attempts\": [", stdout);
  for (size_t i = 0; i < r->nattempts; i++) {
    const dt_dial_attempt_t *a = &r->attempts[i];
    fputs(i > 0 ? ", {\"addr\": " : "{\"addr\": ", stdout);
    tool_json_string(attempt_addr(a, buf));
    printf(", \"start_us\": %llu, \"end_us\": %llu, \"result\": ",
           (unsigned long long)a->start_us, (unsigned long long)a->end_us);
    tool_json_string(result_word(a->status));
    if (a->status != DT_OK) {
      fputs(", \"error\": ", stdout);
      tool_json_string(dt_strerror(a->status));
    }
    if (a->sockopt != NULL) {
      fputs(", \"sockopt\": ", stdout);
      tool_json_string(a->sockopt);
    }
    putchar('}');
  }
  fputs("]}\n", stdout);
}

int main(int argc, char **argv) {
  dtdial_args_t args;
  char err[256];
  if (!parse_args(argc, argv, &args, err, sizeof(err))) {
    if (strcmp(err, "help") == 0) {
      usage(stdout);
      return EXIT_CONNECTED;
    }
    fprintf(stderr, "dtdial: %s\n", err);
    usage(stderr);
    return EXIT_USAGE;
  }
  char server_buf[MAX_SERVERS][160];
  const char *servers[MAX_SERVERS];
  for (size_t i = 0; i < args.nservers; i++) {
    if (!server_arg(args.servers[i], server_buf[i], sizeof(server_buf[i]))) {
      fprintf(stderr, "dtdial: bad server '%s' (ADDR or ADDR#PORT)\n",
              args.servers[i]);
      return EXIT_USAGE;
    }
    servers[i] = server_buf[i];
  }

  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  ro.servers = servers;
  ro.nservers = args.nservers;
  if (args.hosts != NULL) {
    ro.hosts = args.hosts;
  }
  dt_resolver_t *r = NULL;
  dt_status_t st = dt_resolver_new(&ro, &r);
  if (st == DT_EINVAL) {
    fprintf(stderr, "dtdial: bad server address\n");
    return EXIT_USAGE;
  }
  if (st != DT_OK) {
    fprintf(stderr, "dtdial: cannot set up the resolver: %s\n",
            dt_strerror(st));
    return EXIT_INTERNAL;
  }
  dt_dial_opts_t o;
  dt_dial_opts_init(&o);
  o.resolver = r;
  o.family = args.family;
  if (args.timeout_ms > 0) {
    o.timeout_ms = (int)args.timeout_ms;
  }
  if (args.attempt_delay_ms > 0) {
    o.attempt_delay_ms = (int)args.attempt_delay_ms;
  }
  if (args.resolution_delay_ms >= 0) {
    o.resolution_delay_ms = (int)args.resolution_delay_ms;
  }
  if (!args.json) {
    o.trace = on_event;
  }
  dt_dialer_t *d = NULL;
  st = dt_dialer_new(&o, &d);
  if (st != DT_OK) {
    fprintf(stderr, "dtdial: cannot set up the dialer: %s\n", dt_strerror(st));
    dt_resolver_free(r);
    return st == DT_EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
  }

  dt_dial_report_t rep;
  int fd = -1;
  st = dt_dial(d, args.host, (uint16_t)args.port, -1, &fd, &rep);
  if (args.json) {
    print_json(&rep);
  } else if (st == DT_OK) {
    char buf[DT_SOCKADDR_STRLEN];
    printf("Connected to %s (%s): lookup %.3f ms, connect %.3f ms, "
           "total %.3f ms\n",
           attempt_addr(&rep.attempts[rep.winner], buf),
           family_word(rep.family), rep.dns_us / 1000.0,
           rep.connect_us / 1000.0, rep.total_us / 1000.0);
  }
  int rc = EXIT_CONNECTED;
  if (st == DT_OK) {
    close(fd);
  } else {
    if (args.port != 0) {
      fprintf(stderr, "dtdial: %s port %lu: %s\n", args.host, args.port,
              dt_strerror(st));
    } else {
      fprintf(stderr, "dtdial: %s: %s\n", args.host, dt_strerror(st));
    }
    rc = st == DT_EINVAL || st == DT_EBADNAME || st == DT_ENAMETOOLONG
             ? EXIT_USAGE
         : rep.nattempts == 0 ? EXIT_NOADDRESS
                              : EXIT_NOCONNECT;
  }
  dt_dialer_free(d);
  dt_resolver_free(r);
  return rc;
}
