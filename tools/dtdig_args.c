#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtdig_args.h"
#include "toolutil.h"

bool dtdig_parse_args(int argc, char **argv, dtdig_args_t *a, char *err,
                      size_t errlen) {
  memset(a, 0, sizeof(*a));
  a->count = 1;
  a->timeout_ms = -1;
  a->tries = -1;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    unsigned long v;
    if (s[0] == '@') {
      if (s[1] == '\0') {
        snprintf(err, errlen, "empty server after '@'");
        return false;
      }
      if (a->nservers == DTDIG_MAX_SERVERS) {
        snprintf(err, errlen, "at most %d servers", DTDIG_MAX_SERVERS);
        return false;
      }
      a->servers[a->nservers++] = s + 1;
    } else if (strcmp(s, "-p") == 0 || strcmp(s, "-n") == 0 ||
               strcmp(s, "-x") == 0 || strcmp(s, "-r") == 0) {
      if (i + 1 >= argc) {
        snprintf(err, errlen, "option %s needs an argument", s);
        return false;
      }
      const char *arg = argv[++i];
      if (s[1] == 'p') {
        if (!tool_parse_ulong(arg, 1, 65535, &a->port)) {
          snprintf(err, errlen, "bad port '%s' (1-65535)", arg);
          return false;
        }
      } else if (s[1] == 'n') {
        if (!tool_parse_ulong(arg, 1, 1000000, &a->count)) {
          snprintf(err, errlen, "bad count '%s' (1-1000000)", arg);
          return false;
        }
      } else if (s[1] == 'x') {
        a->reverse = arg;
      } else {
        a->resolv_conf = arg;
      }
    } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
      snprintf(err, errlen, "help");
      return false;
    } else if (s[0] == '+') {
      const char *opt = s + 1;
      if (strcmp(opt, "tcp") == 0) {
        a->tcp = true;
      } else if (strcmp(opt, "short") == 0) {
        a->short_out = true;
      } else if (strcmp(opt, "json") == 0) {
        a->json = true;
      } else if (strcmp(opt, "nocache") == 0) {
        a->nocache = true;
      } else if (strcmp(opt, "search") == 0) {
        a->search = true;
      } else if (strcmp(opt, "0x20") == 0) {
        a->dns0x20 = true;
      } else if (strcmp(opt, "cache") == 0) {
        a->dump_cache = true;
      } else if (strncmp(opt, "timeout=", 8) == 0) {
        if (!tool_parse_ulong(opt + 8, 1, 3600000, &v)) {
          snprintf(err, errlen, "bad %s (1-3600000 ms)", s);
          return false;
        }
        a->timeout_ms = (long)v;
      } else if (strncmp(opt, "tries=", 6) == 0) {
        if (!tool_parse_ulong(opt + 6, 1, 100, &v)) {
          snprintf(err, errlen, "bad %s (1-100)", s);
          return false;
        }
        a->tries = (long)v;
      } else if (strncmp(opt, "interval=", 9) == 0) {
        if (!tool_parse_ulong(opt + 9, 0, 3600000, &v)) {
          snprintf(err, errlen, "bad %s (0-3600000 ms)", s);
          return false;
        }
        a->interval_ms = (long)v;
      } else {
        snprintf(err, errlen, "unknown option '%s'", s);
        return false;
      }
    } else if (s[0] == '-' && s[1] != '\0') {
      snprintf(err, errlen, "unknown option '%s'", s);
      return false;
    } else if (a->name == NULL && a->reverse == NULL) {
      a->name = s;
    } else if (a->type_str == NULL) {
      a->type_str = s;
    } else {
      snprintf(err, errlen, "unexpected argument '%s'", s);
      return false;
    }
  }
  if (a->reverse != NULL && a->name != NULL) {
    snprintf(err, errlen, "-x takes the place of NAME");
    return false;
  }
  if (a->name == NULL && a->reverse == NULL) {
    snprintf(err, errlen, "missing NAME");
    return false;
  }
  return true;
}

bool dtdig_server_with_port(const char *s, unsigned long port, char *out,
                            size_t len) {
  if (port == 0) {
    return snprintf(out, len, "%s", s) < (int)len;
  }
  struct in6_addr a6;
  if (strchr(s, ':') != NULL && inet_pton(AF_INET6, s, &a6) == 1) {
    return snprintf(out, len, "[%s]:%lu", s, port) < (int)len;
  }
  if (strchr(s, '%') != NULL && strchr(s, ':') != NULL) {
    return snprintf(out, len, "[%s]:%lu", s, port) < (int)len;
  }
  return snprintf(out, len, "%s:%lu", s, port) < (int)len;
}
