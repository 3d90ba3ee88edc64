/* Zone text for the fake server: records one per line, ';' comments, and
 * ";!" behaviour directives. The syntax is documented in fakedns_main.c,
 * the program users meet it through. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakedns_int.h"

#define FK_MAX_FILE (16u << 20)
#define FK_MAX_TOKENS 16

/* Cuts a line at its comment, leaving ';' inside quotes alone, and drops
 * trailing blanks (a CR from a CRLF file included). */
static void strip_comment(char *s) {
  bool quoted = false;
  char *p = s;
  for (; *p != '\0'; p++) {
    if (*p == '\\' && p[1] != '\0') {
      p++;
    } else if (*p == '"') {
      quoted = !quoted;
    } else if (*p == ';' && !quoted) {
      *p = '\0';
      break;
    }
  }
  size_t n = strlen(s);
  while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL) {
    s[--n] = '\0';
  }
}

static bool blank(const char *s) {
  return s[strspn(s, " \t\r\n")] == '\0';
}

/* Splits s in place on blanks; returns the number of tokens. */
static int tokenize(char *s, char **tok, int max) {
  int n = 0;
  char *save = NULL;
  for (char *t = strtok_r(s, " \t\r\n", &save); t != NULL && n < max;
       t = strtok_r(NULL, " \t\r\n", &save)) {
    tok[n++] = t;
  }
  return n;
}

static bool parse_uint(const char *s, unsigned long max, unsigned *out) {
  if (s == NULL || *s < '0' || *s > '9') {
    return false;
  }
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) {
    return false;
  }
  *out = (unsigned)v;
  return true;
}

static bool parse_type(const char *s, uint16_t *out) {
  if (strcmp(s, "*") == 0) {
    *out = 0;
    return true;
  }
  ldns_rr_type t = ldns_get_rr_type_by_name(s);
  *out = (uint16_t)t;
  return t != 0;
}

static bool parse_rcode(const char *s, int *out) {
  unsigned v;
  if (parse_uint(s, 15, &v)) {
    *out = (int)v;
    return true;
  }
  if (strcasecmp(s, "NOTIMP") == 0) {
    s = "NOTIMPL"; /* dig's spelling, ldns's table says NOTIMPL */
  }
  ldns_lookup_table *e = ldns_lookup_by_name(ldns_rcodes, s);
  if (e == NULL || e->id > 15) {
    return false;
  }
  *out = e->id;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* "random", "random:LEN" or hex digits; bytes are malloc'd into *bytes
 * (NULL for random). */
static bool parse_garbage(const char *s, uint8_t **bytes, size_t *len) {
  *bytes = NULL;
  *len = 0;
  if (strcmp(s, "random") == 0) {
    return true;
  }
  if (strncmp(s, "random:", 7) == 0) {
    unsigned v;
    if (!parse_uint(s + 7, 65535, &v) || v == 0) {
      return false;
    }
    *len = v;
    return true;
  }
  size_t n = strlen(s);
  if (n == 0 || n % 2 != 0 || n / 2 > 65535) {
    return false;
  }
  uint8_t *b = malloc(n / 2);
  if (b == NULL) {
    return false;
  }
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(b);
      return false;
    }
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  *bytes = b;
  *len = n / 2;
  return true;
}

/* Applies one directive line (after ";!") to the server; a trailing
 * comment is cut off first. */
static dt_status_t directive(fakedns_t *srv, char *line) {
  strip_comment(line);
  char *copy = strdup(line);
  if (copy == NULL) {
    return DT_ENOMEM;
  }
  char *tok[FK_MAX_TOKENS];
  int n = tokenize(copy, tok, FK_MAX_TOKENS);
  dt_status_t st = DT_EINVAL;
  uint8_t *garbage = NULL;
  uint16_t type = 0;
  if (n < 3 || !parse_type(tok[2], &type)) {
    goto done;
  }
  bool dflt = strcmp(tok[1], "*") == 0;
  if (dflt && type != 0) {
    goto done; /* the default covers every name and type, nothing less */
  }
  fakedns__key_t key;
  if (!dflt && !fakedns__key_from_str(&key, tok[1], type)) {
    goto done;
  }
  fakedns_behaviour_t b;
  fakedns__get_behaviour(srv, dflt ? NULL : &key, &b);
  const char *verb = tok[0];
  const char *arg = n > 3 ? tok[3] : NULL;
  int nargs = n - 3;
  bool ok = false;
  if (strcmp(verb, "rcode") == 0) {
    ok = nargs == 1 && parse_rcode(arg, &b.rcode);
  } else if (strcmp(verb, "delay") == 0) {
    ok = nargs == 1 && parse_uint(arg, 3600000, &b.delay_ms);
  } else if (strcmp(verb, "drop") == 0) {
    ok = nargs == 1 && parse_uint(arg, 1000000, &b.drop_first);
  } else if (strcmp(verb, "blackhole") == 0) {
    ok = nargs == 0;
    b.black_hole = true;
  } else if (strcmp(verb, "tc") == 0) {
    b.truncate = true;
    b.tc_keep = 0;
    ok = nargs == 0 || (nargs == 1 && parse_uint(arg, 65535, &b.tc_keep));
  } else if (strcmp(verb, "wrong-id") == 0) {
    ok = nargs == 0;
    b.wrong_id = true;
  } else if (strcmp(verb, "wrong-question") == 0) {
    ok = nargs == 0;
    b.wrong_question = true;
  } else if (strcmp(verb, "lower-question") == 0) {
    ok = nargs == 0;
    b.lower_question = true;
  } else if (strcmp(verb, "wrong-port") == 0) {
    ok = nargs == 0;
    b.wrong_port = true;
  } else if (strcmp(verb, "spoof-only") == 0) {
    ok = nargs == 0;
    b.spoof_only = true;
  } else if (strcmp(verb, "spoof") == 0) {
    /* The record is the rest of the original line after the type. */
    const char *p = line;
    for (int i = 0; i < 3; i++) {
      p += strspn(p, " \t");
      p += strcspn(p, " \t");
    }
    p += strspn(p, " \t");
    ok = !blank(p);
    b.spoof_rr = p;
  } else if (strcmp(verb, "garbage") == 0) {
    if (nargs >= 1 && strcmp(arg, "before") == 0) {
      b.garbage = FAKEDNS_GARBAGE_BEFORE;
    } else if (nargs >= 1 && strcmp(arg, "instead") == 0) {
      b.garbage = FAKEDNS_GARBAGE_INSTEAD;
    } else {
      goto done;
    }
    b.garbage_bytes = NULL;
    b.garbage_len = 0;
    b.garbage_keep_id = false;
    ok = nargs <= 3;
    for (int i = 4; ok && i < n; i++) {
      if (strcmp(tok[i], "keep-id") == 0) {
        b.garbage_keep_id = true;
      } else if (garbage == NULL && b.garbage_len == 0) {
        ok = parse_garbage(tok[i], &garbage, &b.garbage_len);
        b.garbage_bytes = garbage;
      } else {
        ok = false;
      }
    }
  } else if (strcmp(verb, "edns") == 0) {
    ok = nargs == 1;
    if (ok && strcmp(arg, "echo") == 0) {
      b.edns = FAKEDNS_EDNS_ECHO;
    } else if (ok && strcmp(arg, "ignore") == 0) {
      b.edns = FAKEDNS_EDNS_IGNORE;
    } else if (ok && strcmp(arg, "formerr") == 0) {
      b.edns = FAKEDNS_EDNS_FORMERR;
    } else {
      ok = false;
    }
  } else if (strcmp(verb, "hold") == 0) {
    ok = nargs == 1 && parse_type(arg, &b.hold_until) && b.hold_until != 0;
  } else if (strcmp(verb, "tcp-close") == 0) {
    ok = nargs == 0;
    b.tcp_close = true;
  }
  if (!ok) {
    goto done;
  }
  st = dflt ? fakedns_set_default(srv, &b)
            : fakedns_set_behaviour(srv, tok[1], type, &b);
done:
  free(garbage);
  free(copy);
  return st;
}

dt_status_t fakedns_load(fakedns_t *srv, const char *text, unsigned *bad_line) {
  if (bad_line != NULL) {
    *bad_line = 0;
  }
  if (srv == NULL || text == NULL) {
    return DT_EINVAL;
  }
  unsigned lineno = 0;
  const char *p = text;
  while (*p != '\0') {
    lineno++;
    size_t len = strcspn(p, "\n");
    char *line = strndup(p, len);
    if (line == NULL) {
      return DT_ENOMEM;
    }
    p += len;
    if (*p == '\n') {
      p++;
    }
    char *s = line + strspn(line, " \t\r");
    dt_status_t st = DT_OK;
    if (strncmp(s, ";!", 2) == 0) {
      st = directive(srv, s + 2);
    } else {
      strip_comment(s);
      if (*s == '$') {
        st = DT_EINVAL; /* $ORIGIN, $TTL...: not supported, say so */
      } else if (!blank(s)) {
        st = fakedns_add(srv, s);
      }
    }
    free(line);
    if (st != DT_OK) {
      if (bad_line != NULL) {
        *bad_line = lineno;
      }
      return st;
    }
  }
  return DT_OK;
}

dt_status_t fakedns_load_file(fakedns_t *srv, const char *path,
                              unsigned *bad_line) {
  if (bad_line != NULL) {
    *bad_line = 0;
  }
  if (srv == NULL || path == NULL) {
    return DT_EINVAL;
  }
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return dt_status_from_errno(errno);
  }
  dt_status_t st = DT_ENOMEM;
  char *buf = malloc(FK_MAX_FILE + 1);
  if (buf == NULL) {
    goto done;
  }
  size_t n = fread(buf, 1, FK_MAX_FILE + 1, f);
  if (ferror(f)) {
    st = dt_status_from_errno(errno);
    goto done;
  }
  if (n > FK_MAX_FILE) {
    st = DT_ETOOBIG;
    goto done;
  }
  buf[n] = '\0';
  if (memchr(buf, '\0', n) != NULL) {
    st = DT_EINVAL; /* a NUL would silently end the text early */
    goto done;
  }
  st = fakedns_load(srv, buf, bad_line);
done:
  free(buf);
  fclose(f);
  return st;
}
