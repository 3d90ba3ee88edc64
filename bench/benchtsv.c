#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "benchtsv.h"

/* A section writes a few hundred rows at most (frame: about 150). */
#define MAX_ROWS 1024

typedef struct {
  char *figure, *title, *unit, *stat, *spread; /* shared by a figure's rows */
  long param;
  char *contender, *kind, *note;
  double value, lo, hi;
  double ratio; /* value ÷ the base row's value, or NAN */
  long runs;
  bool skip, goal, met;
} row_t;

struct bench_tsv {
  FILE *f;
  char *section;
  row_t rows[MAX_ROWS];
  size_t n;
  row_t fig; /* the current figure's fields */
};

static void die(const char *what, const char *arg) {
  fprintf(stderr, "benchtsv: %s%s\n", what, arg);
  exit(2);
}

/* A copy with tabs and newlines made spaces, so that a label can never
 * break a row. */
static char *field(const char *s) {
  if (s == NULL || s[0] == '\0') {
    s = "-";
  }
  char *c = strdup(s);
  if (c == NULL) {
    die("out of memory", "");
  }
  for (char *p = c; *p != '\0'; p++) {
    if (*p == '\t' || *p == '\n' || *p == '\r') {
      *p = ' ';
    }
  }
  return c;
}

/* Plain decimals for big counts (59086554, not 5.90866e+07), six
 * significant digits otherwise; "-" for no number. */
static void put_num(FILE *f, double v) {
  if (isnan(v)) {
    fputs("-", f);
  } else if (fabs(v) >= 1e5) {
    fprintf(f, "%.0f", v);
  } else {
    fprintf(f, "%.6g", v);
  }
}

/* The value of the first "name: value" line of path, or "unknown". */
static void first_line(const char *path, const char *name, char *dst,
                       size_t len) {
  snprintf(dst, len, "unknown");
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return;
  }
  char line[512];
  while (fgets(line, sizeof(line), f) != NULL) {
    char *colon = strchr(line, ':');
    if (strncmp(line, name, strlen(name)) == 0 && colon != NULL) {
      snprintf(dst, len, "%s", colon + 1 + strspn(colon + 1, " \t"));
      dst[strcspn(dst, "\n")] = '\0';
      break;
    }
  }
  fclose(f);
}

bench_tsv_t *bench_tsv_open(const char *path, const char *section) {
  if (path == NULL) {
    return NULL;
  }
  bench_tsv_t *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    die("out of memory", "");
  }
  t->f = fopen(path, "a");
  if (t->f == NULL) {
    die("cannot open ", path);
  }
  if (ftell(t->f) == 0) {
    fputs("section\tfigure\ttitle\tparam\tcontender\tkind\tunit\tstat\tvalue"
          "\tlo\thi\tspread\truns\tratio\tnote\n",
          t->f);
  }
  t->section = field(section);
  time_t now = time(NULL);
  char date[64];
  strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
  bench_tsv_meta(t, "date", "%s", date);
  struct utsname u;
  char model[256];
  uname(&u);
  first_line("/proc/cpuinfo", "model name", model, sizeof(model));
  bench_tsv_meta(t, "machine", "%s %s, %ld CPUs, %s", u.sysname, u.release,
                 sysconf(_SC_NPROCESSORS_ONLN), model);
  /* Other work on a shared machine moves the figures: say how busy it was. */
  double l1, l5, l15;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f != NULL && fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3) {
    bench_tsv_meta(t, "load", "%.2f %.2f %.2f", l1, l5, l15);
  } else {
    bench_tsv_meta(t, "load", "unknown");
  }
  if (f != NULL) {
    fclose(f);
  }
  return t;
}

void bench_tsv_meta(bench_tsv_t *t, const char *key, const char *fmt, ...) {
  if (t == NULL) {
    return;
  }
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  char *k = field(key), *v = field(buf);
  fprintf(t->f, "#meta\t%s\t%s\t%s\n", t->section, k, v);
  free(k);
  free(v);
}

void bench_tsv_plot(bench_tsv_t *t, const char *name, const char *style,
                    const char *figures, const char *title) {
  if (t == NULL) {
    return;
  }
  char *n = field(name), *s = field(style), *f = field(figures),
       *ti = field(title);
  fprintf(t->f, "#plot\t%s\t%s\t%s\t%s\t%s\n", t->section, n, s, f, ti);
  free(n);
  free(s);
  free(f);
  free(ti);
}

void bench_tsv_figure(bench_tsv_t *t, const char *figure, const char *title,
                      const char *unit, const char *stat, const char *spread) {
  if (t == NULL) {
    return;
  }
  /* Borrowed until the next figure: every row copies them. */
  t->fig.figure = (char *)figure;
  t->fig.title = (char *)title;
  t->fig.unit = (char *)unit;
  t->fig.stat = (char *)stat;
  t->fig.spread = (char *)spread;
}

static row_t *add(bench_tsv_t *t, long param, const char *contender,
                  const char *kind, const char *note) {
  if (t->fig.figure == NULL) {
    die("a row before any figure in section ", t->section);
  }
  if (t->n == MAX_ROWS) {
    die("too many rows in section ", t->section);
  }
  row_t *r = &t->rows[t->n++];
  memset(r, 0, sizeof(*r));
  r->figure = field(t->fig.figure);
  r->title = field(t->fig.title);
  r->unit = field(t->fig.unit);
  r->stat = field(t->fig.stat);
  r->spread = field(t->fig.spread);
  r->param = param;
  r->contender = field(contender);
  r->kind = field(kind);
  r->note = field(note);
  r->value = r->lo = r->hi = NAN;
  r->runs = -1;
  return r;
}

void bench_tsv_row(bench_tsv_t *t, long param, const char *contender,
                   const char *kind, double value, double lo, double hi,
                   long runs, const char *note) {
  if (t == NULL) {
    return;
  }
  row_t *r = add(t, param, contender, kind, note);
  r->value = value;
  r->lo = lo;
  r->hi = hi;
  r->runs = runs;
}

void bench_tsv_skip(bench_tsv_t *t, long param, const char *contender,
                    const char *kind, const char *why) {
  if (t == NULL) {
    return;
  }
  add(t, param, contender, kind, why)->skip = true;
}

void bench_tsv_goal(bench_tsv_t *t, long param, bool headline, const char *goal,
                    const char *unit, double measured, bool met) {
  if (t == NULL) {
    return;
  }
  row_t *r = add(t, param, goal, headline ? "goal" : "goal-detail",
                 isnan(measured) ? "not measured"
                 : met           ? "met"
                                 : "not met");
  free(r->unit);
  r->unit = field(unit);
  free(r->stat);
  r->stat = field("measured");
  free(r->spread);
  r->spread = field("-");
  r->value = measured;
  r->goal = true;
  r->met = met;
}

/* The value of the base row of r's figure and param, or NAN. */
static double base_of(const bench_tsv_t *t, const row_t *r) {
  for (size_t i = 0; i < t->n; i++) {
    const row_t *b = &t->rows[i];
    if (!b->skip && !b->goal && strcmp(b->kind, "base") == 0 &&
        strcmp(b->figure, r->figure) == 0 && b->param == r->param) {
      return b->value;
    }
  }
  return NAN;
}

void bench_tsv_close(bench_tsv_t *t) {
  if (t == NULL) {
    return;
  }
  /* Every ratio before any row is written (and freed). */
  for (size_t i = 0; i < t->n; i++) {
    row_t *r = &t->rows[i];
    double base = r->goal || r->skip ? NAN : base_of(t, r);
    r->ratio = !isnan(base) && base != 0 ? r->value / base : NAN;
  }
  for (size_t i = 0; i < t->n; i++) {
    row_t *r = &t->rows[i];
    fprintf(t->f, "%s\t%s\t%s\t", t->section, r->figure, r->title);
    if (r->param == BENCH_NO_PARAM) {
      fputs("-", t->f);
    } else {
      fprintf(t->f, "%ld", r->param);
    }
    fprintf(t->f, "\t%s\t%s\t%s\t%s\t", r->contender, r->kind, r->unit,
            r->stat);
    put_num(t->f, r->skip ? NAN : r->value);
    fputc('\t', t->f);
    put_num(t->f, r->lo);
    fputc('\t', t->f);
    put_num(t->f, r->hi);
    fprintf(t->f, "\t%s\t", r->spread);
    if (r->runs >= 0) {
      fprintf(t->f, "%ld", r->runs);
    } else {
      fputs("-", t->f);
    }
    fputc('\t', t->f);
    if (!isnan(r->ratio)) {
      fprintf(t->f, "%.4g", r->ratio);
    } else {
      fputs("-", t->f);
    }
    fprintf(t->f, "\t%s\n", r->note);
    free(r->figure);
    free(r->title);
    free(r->unit);
    free(r->stat);
    free(r->spread);
    free(r->contender);
    free(r->kind);
    free(r->note);
  }
  if (fclose(t->f) != 0) {
    die("cannot write the results of section ", t->section);
  }
  free(t->section);
  free(t);
}
