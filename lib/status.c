#include "config.h"

#include <errno.h>

#include "dialtone/common.h"

static const char *const texts[] = {
#define TEXT(name, text) text,
    DT_STATUS_MAP(TEXT)
#undef TEXT
};

static const char *const names[] = {
#define NAME(name, text) "DT_" #name,
    DT_STATUS_MAP(NAME)
#undef NAME
};

const char *dt_strerror(dt_status_t status) {
  if ((unsigned)status >= DT__STATUS_COUNT) {
    return "unknown status";
  }
  return texts[status];
}

const char *dt_status_name(dt_status_t status) {
  if ((unsigned)status >= DT__STATUS_COUNT) {
    return "DT_UNKNOWN";
  }
  return names[status];
}

dt_status_t dt_status_from_errno(int err) {
  switch (err) {
  case 0:
    return DT_OK;
  case EINVAL:
    return DT_EINVAL;
  case ENOMEM:
  case ENOBUFS:
    return DT_ENOMEM;
  case ETIMEDOUT:
    return DT_ETIMEDOUT;
  case ECONNREFUSED:
    return DT_ECONNREFUSED;
  case ENETUNREACH:
  case ENETDOWN:
    return DT_ENETUNREACH;
  case EHOSTUNREACH:
  case EHOSTDOWN:
    return DT_EHOSTUNREACH;
  case ECONNRESET:
  case ECONNABORTED:
  case EPIPE:
    return DT_ECONNRESET;
  case ECANCELED:
    return DT_ECANCELED;
  case ENOENT:
    return DT_ENOENT;
  case EACCES:
  case EPERM:
    return DT_EACCES;
  case EMFILE:
  case ENFILE:
    return DT_EMFILE;
  case EADDRINUSE:
  case EADDRNOTAVAIL:
    return DT_EADDRINUSE;
  case EAFNOSUPPORT:
  case EPFNOSUPPORT:
  case EPROTONOSUPPORT:
    return DT_EAFNOSUPPORT;
  case ENAMETOOLONG:
    return DT_ENAMETOOLONG;
  case EFBIG:
  case EMSGSIZE:
    return DT_ETOOBIG;
  case EOPNOTSUPP:
    return DT_ENOTSUP;
  case EBUSY:
    return DT_EBUSY;
  default:
    return DT_ESYS;
  }
}

const char *dt_version(void) {
  return PACKAGE_VERSION;
}
