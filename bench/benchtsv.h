/* Machine-readable results of the benchmark programs: one tab-separated
 * file per section, bench/results/SECTION.tsv, written from the same
 * measurements as the section's Markdown. bench/report.sh reads every such
 * file into bench/results/REPORT.md and its plots. The format is described
 * once, in bench/report.sh's header comment.
 *
 * Rows are kept until bench_tsv_close(), which works out every ratio to
 * dialtone in one place (value ÷ the value of the figure's `base` row with
 * the same param), so that the direction of every ratio is the same in
 * every section. */
#ifndef DT_BENCHTSV_H
#define DT_BENCHTSV_H

#include <stdbool.h>

typedef struct bench_tsv bench_tsv_t;

/* No param: the figure is one number per contender. */
#define BENCH_NO_PARAM (-1L)

/* Opens path for appending (the header line goes first into an empty
 * file), for rows of section. A NULL path returns NULL, and every call
 * below accepts NULL and does nothing: a program that was not asked for
 * its TSV needs no test around each call. Exits with a message when the
 * file cannot be opened. Records the date, the machine and the load
 * average as #meta lines. */
bench_tsv_t *bench_tsv_open(const char *path, const char *section);

/* A "#meta<TAB>key<TAB>value" line, written at once. */
void bench_tsv_meta(bench_tsv_t *t, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Asks bench/report.sh for a PNG named NAME.png: style "bars" (one group
 * per contender, one bar per figure of the comma-separated list, with the
 * lo-hi range as error bars) or "lines" (value against param, one line per
 * contender, log x). */
void bench_tsv_plot(bench_tsv_t *t, const char *name, const char *style,
                    const char *figures, const char *title);

/* Starts a figure: the rows that follow are its contenders. stat says what
 * the value is ("median of 5000 lookups"), spread what lo and hi are
 * ("p10-p90", "min-max", "-"). */
void bench_tsv_figure(bench_tsv_t *t, const char *figure, const char *title,
                      const char *unit, const char *stat, const char *spread);

/* One contender of the current figure. kind: "base" (the dialtone row that
 * ratios are taken to; one per figure and param), "dialtone" (another
 * dialtone variant), "alt" (an alternative a user would pick instead) or
 * "ref" (a reference, not an alternative). lo and hi may be NAN; runs is
 * how many measurements the value is the median (or stat) of. */
void bench_tsv_row(bench_tsv_t *t, long param, const char *contender,
                   const char *kind, double value, double lo, double hi,
                   long runs, const char *note);

/* A contender of the current figure that was not measured, and why (the
 * same "SKIP ..." line the Markdown shows). */
void bench_tsv_skip(bench_tsv_t *t, long param, const char *contender,
                    const char *kind, const char *why);

/* A goal of the issue about the current figure: its text, the measured
 * value in unit, and whether it is met. headline: the goal is a row of
 * REPORT.md's summary table, else only of its section's table. */
void bench_tsv_goal(bench_tsv_t *t, long param, bool headline, const char *goal,
                    const char *unit, double measured, bool met);

/* Works out the ratios, writes the rows and closes the file. */
void bench_tsv_close(bench_tsv_t *t);

#endif
