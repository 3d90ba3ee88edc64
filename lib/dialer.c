/* The public face of the dial module: options, the dialer object, and the
 * blocking dt_dial(), a poll() loop over the state machine of dial.c. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "alloc.h"
#include "dial_int.h"
#include "sockopt.h"

enum {
  ATTEMPT_DELAY_MIN_MS = 10,   /* RFC 8305 §5: MUST NOT be less */
  ATTEMPT_DELAY_MAX_MS = 2000, /* RFC 8305 §5: SHOULD NOT be more */
};

void dt_dial_opts_init(dt_dial_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->family = AF_UNSPEC;
  o->timeout_ms = 30000;
  o->attempt_delay_ms = 250;
  o->resolution_delay_ms = 50;
  o->attempt_timeout_ms = 0;
  o->first_family_count = 1;
  dt_sockopt_opts_init(&o->sockopts);
  o->nonblocking = false;
}

static dt_status_t check_opts(const dt_dial_opts_t *o) {
  const dt_sockopt_opts_t *s = &o->sockopts;
  if ((o->family != AF_UNSPEC && o->family != AF_INET &&
       o->family != AF_INET6) ||
      o->timeout_ms <= 0 || o->attempt_delay_ms < 0 ||
      o->resolution_delay_ms < 0 || o->attempt_timeout_ms < 0 ||
      o->first_family_count < 1 || s->rcvbuf < 0 || s->sndbuf < 0 ||
      s->keepidle_s < 0 || s->keepintvl_s < 0 || s->keepcnt < 0 ||
      s->user_timeout_ms > INT32_MAX) {
    return DT_EINVAL;
  }
  return DT_OK;
}

dt_status_t dt_dialer_new(const dt_dial_opts_t *opts, dt_dialer_t **out) {
  dt_dial_opts_t defaults;
  if (out == NULL) {
    return DT_EINVAL;
  }
  if (opts == NULL) {
    dt_dial_opts_init(&defaults);
    opts = &defaults;
  }
  dt_status_t st = check_opts(opts);
  if (st != DT_OK) {
    return st;
  }
  dt__ipaddr_t bind;
  memset(&bind, 0, sizeof(bind));
  if (opts->bind_addr != NULL) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (dt__sockaddr_parse(opts->bind_addr, 0, &ss, &len) != DT_OK ||
        (opts->family != AF_UNSPEC && opts->family != ss.ss_family)) {
      return DT_EINVAL;
    }
    memcpy(&bind, &ss, len);
  }
  dt_dialer_t *d = dt__calloc(1, sizeof(*d));
  if (d == NULL) {
    return DT_ENOMEM;
  }
  d->o = *opts;
  d->o.bind_addr = NULL;
  d->o.sockops = NULL;
  if (d->o.attempt_delay_ms < ATTEMPT_DELAY_MIN_MS) {
    d->o.attempt_delay_ms = ATTEMPT_DELAY_MIN_MS;
  } else if (d->o.attempt_delay_ms > ATTEMPT_DELAY_MAX_MS) {
    d->o.attempt_delay_ms = ATTEMPT_DELAY_MAX_MS;
  }
  d->has_bind = opts->bind_addr != NULL;
  d->bind = bind;
  dt__sockops_init(&d->ops, opts->sockops);
  d->clock.now_us = opts->clock_us;
  d->clock.ctx = opts->clock_ctx;
  st = dt__opreg_init(&d->opreg);
  if (st != DT_OK) {
    dt__free(d);
    return st;
  }
  if (opts->resolver != NULL) {
    d->resolver = opts->resolver;
  } else {
    dt_resolver_opts_t ro;
    dt_resolver_opts_init(&ro);
    ro.clock_us = opts->clock_us;
    ro.clock_ctx = opts->clock_ctx;
    st = dt_resolver_new(&ro, &d->resolver);
    if (st != DT_OK) {
      dt__opreg_destroy(&d->opreg);
      dt__free(d);
      return st;
    }
    d->own_resolver = true;
  }
  *out = d;
  return DT_OK;
}

void dt_dialer_free(dt_dialer_t *d) {
  if (d == NULL) {
    return;
  }
  /* Loop dials end first, callbacks included, while the resolver they
   * look names up with is still there. */
  dt__opreg_abort_all(&d->opreg);
  dt__opreg_destroy(&d->opreg);
  if (d->own_resolver) {
    dt_resolver_free(d->resolver);
  }
  dt__free(d);
}

static dt_status_t early_failure(dt_dial_report_t *report, dt_status_t st) {
  if (report != NULL) {
    memset(report, 0, offsetof(dt_dial_report_t, attempts));
    report->status = st;
    report->winner = -1;
    report->family = AF_UNSPEC;
  }
  return st;
}

dt_status_t dt_dial(dt_dialer_t *d, const char *host, uint16_t port,
                    int timeout_ms, int *fd, dt_dial_report_t *report) {
  if (d == NULL || host == NULL || fd == NULL) {
    return early_failure(report, DT_EINVAL);
  }
  dt__dial_t m;
  dt_status_t st = dt__dial_start(&m, d, host, port, timeout_ms, report, 0);
  if (st != DT_OK) {
    return early_failure(report, st);
  }
  while (!m.done) {
    struct pollfd pfd[DT__DIAL_MAX_POLLFDS];
    size_t n = dt__dial_pollfds(&m, pfd);
    int ms = dt__deadline_poll_ms(&d->clock, dt__dial_deadline(&m));
    int rc = d->ops.poll(d->ops.ctx, pfd, (nfds_t)n, ms);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      dt_status_t why = dt_status_from_errno(errno);
      dt__dial_abort(&m, why == DT_OK ? DT_ESYS : why);
      break;
    }
    dt__dial_process(&m, pfd, rc > 0 ? n : 0);
  }
  st = dt__dial_take(&m, fd);
  dt__dial_cleanup(&m);
  return st;
}

dt_status_t dt_dial_unix(dt_dialer_t *d, const char *path, int timeout_ms,
                         int *fd, dt_dial_report_t *report) {
  char host[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
  if (path == NULL) {
    return early_failure(report, DT_EINVAL);
  }
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    return early_failure(report, DT_ENAMETOOLONG);
  }
  snprintf(host, sizeof(host), "unix:%s", path);
  return dt_dial(d, host, 0, timeout_ms, fd, report);
}

const char *dt_dial_event_tostr(dt_dial_event_type_t type) {
  switch (type) {
  case DT_DIAL_EV_LOOKUP_START:
    return "lookup-start";
  case DT_DIAL_EV_LOOKUP_DONE:
    return "lookup-done";
  case DT_DIAL_EV_ATTEMPT_START:
    return "attempt-start";
  case DT_DIAL_EV_ATTEMPT_DONE:
    return "attempt-done";
  case DT_DIAL_EV_CONNECTED:
    return "connected";
  case DT_DIAL_EV_FAILED:
    return "failed";
  }
  return "?";
}

const char *dt_dial_source_tostr(dt_dial_source_t source) {
  switch (source) {
  case DT_DIAL_SOURCE_NONE:
    return "none";
  case DT_DIAL_SOURCE_LITERAL:
    return "literal";
  case DT_DIAL_SOURCE_HOSTS:
    return "hosts";
  case DT_DIAL_SOURCE_CACHE:
    return "cache";
  case DT_DIAL_SOURCE_DNS:
    return "dns";
  }
  return "?";
}
