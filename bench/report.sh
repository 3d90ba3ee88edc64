#!/bin/sh
# bench/report.sh: bench/results/REPORT.md and its plots, from the results
# that the benchmark sections left in bench/results. Nothing is measured
# here: `make bench` runs every section and then this script; `make
# bench-report` runs only this script, on the files as they are.
#
# usage: bench/report.sh --start SRCDIR RESULTSDIR
#          records the run (date, machine, load average, commit, command)
#          in RESULTSDIR/run.meta; `make bench` calls it first
#        bench/report.sh [--end] RESULTSDIR [README]
#          writes RESULTSDIR/REPORT.md and RESULTSDIR/plots/*.png; --end
#          first adds the load average at the end of the run to run.meta.
#          With README, its summary table replaces the lines between
#          "<!-- bench-summary -->" and "<!-- /bench-summary -->" there.
#
# Needs a POSIX shell and awk; gnuplot (apt-get install gnuplot-nox) for
# the plots, or the one GNUPLOT names. Without gnuplot, REPORT.md says so,
# and so does stderr; the tables are written all the same.
#
# --- The format of RESULTSDIR/SECTION.tsv (written through bench/benchtsv.h)
#
# Tab-separated, UTF-8. A header line, then rows of 15 fields:
#
#   section    the section, as in the file name (resolve, cache, ...)
#   figure     a figure's id within its section (cold_pinned, rps, ...)
#   title      what the figure shows, for humans
#   param      the figure's parameter (frame bytes, names cached), or "-"
#   contender  who was measured (for a goal row: the goal)
#   kind       base: the dialtone row that ratios are taken to, one per
#              figure and param; dialtone: another dialtone variant; alt: an
#              alternative a user would pick instead (the "best alternative"
#              of the summary is one of these); ref: a reference, not an
#              alternative; goal / goal-detail: a goal of the issue, in the
#              summary or only in its section
#   unit       of value (and lo, hi). A unit ending in "/s" is a rate
#              (higher is better); any other unit is a cost (lower is
#              better)
#   stat       what value is ("median of 5000 lookups, one per round")
#   value      the figure; "-" when the contender was not measured
#   lo, hi     the spread around it, or "-"
#   spread     what lo and hi are: p10-p90, min-max, or "-"
#   runs       how many measurements value is the median (or stat) of
#   ratio      value ÷ the base row's value, same figure and param: for a
#              cost, "N× dialtone's time"; for a rate, "N× dialtone's rate"
#   note       why a contender was skipped ("SKIP ..."), met / not met for
#              a goal, or a remark
#
# Lines starting with # are directives, not rows:
#   #meta<TAB>section<TAB>key<TAB>value      date, machine, load, ...
#   #plot<TAB>section<TAB>name<TAB>style<TAB>figures<TAB>title
#     asks for plots/NAME.png: style "bars" (a group per contender of the
#     first figure, a bar per figure of the comma-separated list, lo-hi as
#     error bars, the legend the first word of each figure's stat) or
#     "lines" (value by param, log x, a line per contender). The y axis is
#     logarithmic when the values span more than 30×.
#
# --- Adding a section (the hook)
#
# A new section needs no change here: its program writes
# RESULTSDIR/NAME.md (the tables for humans, linked from REPORT.md) and
# RESULTSDIR/NAME.tsv (through bench/benchtsv.h, or by hand in the format
# above), its goals as goal rows and its plots as #plot lines; its make
# target goes into BENCH_MORE in Makefile.am, which `make bench` runs before
# this script. Sections are reported in the order below, then any other in
# the order of their names. The event-loop section is to be "loop"
# (lookups/s with 256 questions in flight on one thread, against c-ares).
set -eu

order="resolve cache dial pool frame loop"
gnuplot=${GNUPLOT:-gnuplot}

say() { printf 'report.sh: %s\n' "$*" >&2; }

mode=report
case ${1:-} in
--start)
  mode=start
  srcdir=${2:?usage: report.sh --start SRCDIR RESULTSDIR}
  shift 2
  ;;
--end)
  mode=end
  shift
  ;;
esac
results=${1:?usage: report.sh [--end] RESULTSDIR [README]}
readme=${2:-}
mkdir -p "$results"

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }

if [ $mode = start ]; then
  commit=$(git -C "$srcdir" describe --always --dirty --abbrev=12 2>/dev/null ||
    echo "unknown (not a git checkout)")
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
  {
    printf '#meta\trun\tcommand\t%s\n' "${DT_BENCH_COMMAND:-make bench}"
    printf '#meta\trun\tdate\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf '#meta\trun\tmachine\t%s %s, %s CPUs, %s\n' "$(uname -s)" \
      "$(uname -r)" "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')" \
      "${model:-unknown}"
    printf '#meta\trun\tcommit\t%s\n' "$commit"
    printf '#meta\trun\tload at the start\t%s\n' "$(loadavg)"
  } >"$results/run.meta"
  exit 0
fi
if [ $mode = end ] && [ -f "$results/run.meta" ]; then
  printf '#meta\trun\tload at the end\t%s\n' "$(loadavg)" >>"$results/run.meta"
  printf '#meta\trun\tended\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    >>"$results/run.meta"
fi

# The sections' files, known ones first.
files=
for s in $order; do
  [ -f "$results/$s.tsv" ] && files="$files $results/$s.tsv"
done
for f in "$results"/*.tsv; do
  [ -f "$f" ] || continue
  s=$(basename "$f" .tsv)
  case " $order " in *" $s "*) continue ;; esac
  files="$files $f"
done
if [ -z "$files" ]; then
  say "no results in $results (make bench writes them)"
  exit 1
fi
run=
[ -f "$results/run.meta" ] && run="$results/run.meta"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dt-report.XXXXXX")
trap '[ -n "${DT_REPORT_KEEP:-}" ] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# One pass over every file: the report with a placeholder line per plot,
# the summary table for the README, and a data file and gnuplot script per
# plot.
# shellcheck disable=SC2086
awk -F '\t' -v tmp="$tmp" -v results="$results" -v generated="$(date -u '+%Y-%m-%d %H:%M UTC')" '
function dash(v) { return v == "" || v == "-" }
function israte(u) { return u ~ /\/s$/ }
function fmt(v,   a) {
  if (dash(v)) return "–"
  v += 0; a = v < 0 ? -v : v
  if (v == int(v) && a < 1e15) return sprintf("%.0f", v)
  if (a >= 10000) return sprintf("%.0f", v)
  if (a >= 10) return sprintf("%.1f", v)
  if (a >= 1) return sprintf("%.2f", v)
  return sprintf("%.3g", v)
}
function fmtr(v,   a) {
  if (dash(v)) return "–"
  v += 0; a = v < 0 ? -v : v
  if (a >= 100) return sprintf("%.0f", v)
  if (a >= 10) return sprintf("%.1f", v)
  if (a >= 0.1) return sprintf("%.2f", v)
  return sprintf("%.2g", v)
}
function addmeta(sec, k, v,   key) {
  key = sec SUBSEP k
  if (!(key in meta)) { meta[key] = v; mkeys[sec] = mkeys[sec] SUBSEP k }
  else if (index("; " meta[key] "; ", "; " v "; ") == 0) meta[key] = meta[key] "; " v
}
function q(s) { gsub(/"/, "\x27", s); return "\"" s "\"" }
# The base row of a figure and param, or 0.
function base(sec, fig, par,   i) {
  for (i = 1; i <= n; i++)
    if (S[i] == sec && F[i] == fig && P[i] == par && K[i] == "base" && !dash(V[i])) return i
  return 0
}
# The best measured alternative of a figure and param, or 0.
function best(sec, fig, par,   i, b) {
  b = 0
  for (i = 1; i <= n; i++) {
    if (S[i] != sec || F[i] != fig || P[i] != par || K[i] != "alt" || dash(V[i])) continue
    if (b == 0 || (israte(U[i]) ? V[i] + 0 > V[b] + 0 : V[i] + 0 < V[b] + 0)) b = i
  }
  return b
}
function istime(u) { return u ~ /^(ns|µs|ms|s)$/ }
function ratiotext(i) {
  if (dash(R[i])) return "–"
  return fmtr(R[i]) "× dialtone\x27s " (israte(U[i]) ? "rate" : istime(U[i]) ? "time" : U[i])
}
function figtitle(sec, fig) { return (sec SUBSEP fig) in T ? T[sec SUBSEP fig] : fig }
function atparam(par) { return dash(par) ? "" : ", at " par }

FNR == 1 && $1 == "section" { next }
$1 == "#meta" { addmeta($2, $3, $4); next }
$1 == "#plot" {
  np++; PS[np] = $2; PN[np] = $3; PY[np] = $4; PF[np] = $5; PT[np] = $6
  next
}
/^#/ || NF < 15 { next }
{
  n++
  S[n] = $1; F[n] = $2; P[n] = $4; C[n] = $5; K[n] = $6; U[n] = $7
  ST[n] = $8; V[n] = $9; LO[n] = $10; HI[n] = $11; SP[n] = $12
  RU[n] = $13; R[n] = $14; NO[n] = $15
  if (!($1 in seen)) { seen[$1] = 1; nsec++; SEC[nsec] = $1 }
  key = $1 SUBSEP $2
  if (!(key in nfig_of)) { nfig_of[key] = 1; nf[$1]++; FIG[$1, nf[$1]] = $2 }
  # The title of the first contender row; a goal row only stands in.
  if (!dash($3) && (!(key in T) || (K[n] !~ /^goal/ && !(key in TC)))) {
    T[key] = $3
    if (K[n] !~ /^goal/) TC[key] = 1
  }
  if (K[n] !~ /^goal/ && !(key in FST)) { FST[key] = ST[n]; FSP[key] = SP[n]; FU[key] = U[n] }
}
END {
  out = tmp "/REPORT.md"
  summ = tmp "/summary.md"
  printf "" > out

  # --- the run
  print "# dialtone benchmark report" > out
  print "" > out
  print "Every figure below was measured by `make bench` on one machine in one run, each contender beside dialtone;" > out
  print "this file is written from the sections\x27 result files (bench/results/*.tsv) by bench/report.sh, which" > out
  print "`make bench` runs last and `make bench-report` runs alone. Nothing here is measured by the report itself." > out
  print "" > out
  if (("run" SUBSEP "date") in meta) {
    print "- command: `" meta["run", "command"] "`" > out
    print "- date: " meta["run", "date"] (("run" SUBSEP "ended") in meta ? " to " meta["run", "ended"] : "") > out
    print "- machine: " meta["run", "machine"] > out
    print "- commit: " meta["run", "commit"] > out
    l = "- load average (1, 5, 15 min; the machine is shared, other work moves the figures): " meta["run", "load at the start"] " at the start"
    if (("run" SUBSEP "load at the end") in meta) l = l ", " meta["run", "load at the end"] " at the end"
    print l "; each section\x27s below" > out
  } else {
    print "- run: no bench/results/run.meta, so the sections were run one by one (`make bench-SECTION`); each section says when and how busy the machine was" > out
  }
  print "- report generated: " generated > out
  print "" > out
  print "How to read: *value* is the median of *runs* repeated measurements (the *stat* line of each table says of what)," > out
  print "and *range* its spread (p10–p90 or min–max, as each table says). *× dialtone* is the contender\x27s value ÷" > out
  print "dialtone\x27s in the same figure, in the same direction everywhere: for a time (ns, µs, ms) or a cost (bytes," > out
  print "system calls) it reads \"N× dialtone\x27s time\" and above 1 dialtone is ahead; for a rate (…/s) it reads" > out
  print "\"N× dialtone\x27s rate\" and below 1 dialtone is ahead. *kind*: base is the dialtone row ratios are taken to," > out
  print "alt an alternative a user would pick instead, ref a reference point that is not an alternative." > out
  print "A contender that is not installed is listed as skipped, with the reason; nothing is estimated in its place." > out
  print "" > out

  # --- the summary: one row per headline goal
  print "## Summary" > out
  print "" > out
  hdr = "| figure | dialtone | best alternative | alternative × dialtone | goal (issue) | measured | met |"
  print hdr > out; print hdr > summ
  print "|---|--:|---|--:|---|--:|---|" > out; print "|---|--:|---|--:|---|--:|---|" > summ
  for (i = 1; i <= n; i++) {
    if (K[i] != "goal") continue
    b = base(S[i], F[i], P[i]); a = best(S[i], F[i], P[i])
    row = "| " S[i] ": " figtitle(S[i], F[i]) atparam(P[i]) " | " (b ? fmt(V[b]) " " U[b] : "–")
    row = row " | " (a ? C[a] " " fmt(V[a]) " " U[a] : "–") " | " (a ? ratiotext(a) : "–")
    row = row " | " C[i] " | " (dash(V[i]) ? "–" : fmt(V[i]) " " U[i]) " | " (NO[i] == "met" ? "**met**" : NO[i] == "not met" ? "**not met**" : NO[i]) " |"
    print row > out; print row > summ
  }
  print "" > out; print "" > summ
  line = "Goals of each section (summary and detail rows):"
  for (s = 1; s <= nsec; s++) {
    tot = 0; met = 0
    for (i = 1; i <= n; i++) if (S[i] == SEC[s] && K[i] ~ /^goal/) { tot++; if (NO[i] == "met") met++ }
    if (tot) line = line " " SEC[s] " " met " of " tot " met;"
  }
  sub(/;$/, ".", line)
  print line > out; print line > summ
  print "" > out; print "" > summ
  nskip = 0
  for (i = 1; i <= n; i++) {
    if (K[i] ~ /^goal/ || !dash(V[i])) continue
    k = S[i] SUBSEP C[i] SUBSEP NO[i]
    if (k in skipped) continue
    skipped[k] = 1
    if (!nskip++) { print "Skipped (not measured, never estimated):" > out; print "" > out }
    print "- " S[i] ", " C[i] ": " NO[i] > out
  }
  if (nskip) print "" > out
  else print "Every contender of every section was measured (none skipped).\n" > out

  # --- the plots: placeholders, filled in once gnuplot has run
  if (np) {
    print "## Plots" > out
    print "" > out
    for (p = 1; p <= np; p++) {
      print "@@PLOT\t" PN[p] "\t" PT[p] > out
      print "" > out
      plot(p)
    }
  }

  # --- each section
  for (s = 1; s <= nsec; s++) {
    sec = SEC[s]
    # The section named as its own Markdown names itself.
    name = ""; f = results "/" sec ".md"
    while (name == "" && (getline l < f) > 0) if (l ~ /^#/) { sub(/^#+ */, "", l); name = l }
    close(f)
    print "## Section " sec (name == "" ? "" : ": " name) > out
    print "" > out
    print "Full tables, methods and remarks: [" sec ".md](" sec ".md); machine-readable: [" sec ".tsv](" sec ".tsv)." > out
    print "" > out
    split(substr(mkeys[sec], 2), ks, SUBSEP)
    for (j = 1; (j in ks); j++)
      print "- " (ks[j] == "load" ? "load average (1, 5, 15 min) when each of its programs started" : ks[j]) ": " meta[sec, ks[j]] > out
    print "" > out
    for (f = 1; f <= nf[sec]; f++) {
      fig = FIG[sec, f]; key = sec SUBSEP fig
      hasp = 0
      for (i = 1; i <= n; i++) if (S[i] == sec && F[i] == fig && !dash(P[i])) hasp = 1
      print "### " figtitle(sec, fig) " (`" fig "`)" > out
      print "" > out
      if (key in FST) {
        print "Unit: " FU[key] "; value: " FST[key] "; range: " (dash(FSP[key]) ? "none" : FSP[key]) "." > out
        print "" > out
        print (hasp ? "| param " : "") "| contender | kind | value | range | runs | × dialtone | note |" > out
        print (hasp ? "|--:" : "") "|---|---|--:|--:|--:|--:|---|" > out
        for (i = 1; i <= n; i++) {
          if (S[i] != sec || F[i] != fig || K[i] ~ /^goal/) continue
          rg = dash(LO[i]) || dash(HI[i]) ? "–" : fmt(LO[i]) "–" fmt(HI[i])
          print (hasp ? "| " P[i] " " : "") "| " C[i] " | " K[i] " | " fmt(V[i]) " | " rg " | " (dash(RU[i]) ? "–" : RU[i]) " | " fmtr(R[i]) " | " (dash(NO[i]) ? "" : NO[i]) " |" > out
        }
        print "" > out
      }
      ng = 0
      for (i = 1; i <= n; i++) {
        if (S[i] != sec || F[i] != fig || K[i] !~ /^goal/) continue
        if (!ng++) { print "Goals:" > out; print "" > out }
        print "- " C[i] atparam(P[i]) ": " (dash(V[i]) ? "not measured" : fmt(V[i]) " " U[i]) " → **" NO[i] "**" (K[i] == "goal" ? " (in the summary)" : "") > out
      }
      if (ng) print "" > out
    }
  }
}

# Writes tmp/NAME.dat and tmp/NAME.gp for plot p, and a line of tmp/plots.
function plot(p,   sec, nfg, figs, j, i, c, nc, cs, v, lo, hi, mn, mx, dat, gp, cmd, xt, pars, pmin, pmax, unit, leg) {
  sec = PS[p]; nfg = split(PF[p], figs, ",")
  dat = tmp "/" PN[p] ".dat"; gp = tmp "/" PN[p] ".gp"
  mn = ""; mx = ""; nc = 0; unit = FU[sec SUBSEP figs[1]]
  for (i = 1; i <= n; i++) {
    if (S[i] != sec || F[i] != figs[1] || K[i] ~ /^goal/ || dash(V[i])) continue
    if (!((C[i]) in cs)) { cs[C[i]] = ++nc; CN[nc] = C[i] }
  }
  if (nc == 0) { print PN[p] "\tnothing measured" > (tmp "/plots"); return }
  printf "" > dat
  if (PY[p] == "lines") {
    for (c = 1; c <= nc; c++) {
      for (i = 1; i <= n; i++) {
        if (S[i] != sec || F[i] != figs[1] || C[i] != CN[c] || dash(V[i]) || K[i] ~ /^goal/) continue
        lo = dash(LO[i]) ? V[i] : LO[i]; hi = dash(HI[i]) ? V[i] : HI[i]
        print P[i], V[i], lo, hi > dat
        if (mn == "" || lo + 0 < mn) mn = lo + 0
        if (mx == "" || hi + 0 > mx) mx = hi + 0
        if (!(P[i] in pars)) { pars[P[i]] = 1; xt = xt (xt == "" ? "" : ", ") "\"" P[i] "\" " P[i] }
        if (pmin == "" || P[i] + 0 < pmin) pmin = P[i] + 0
        if (pmax == "" || P[i] + 0 > pmax) pmax = P[i] + 0
      }
      print "\n" > dat
    }
  } else {
    for (c = 1; c <= nc; c++) {
      printf "%s", q(CN[c]) > dat
      for (j = 1; j <= nfg; j++) {
        v = "NaN"; lo = "NaN"; hi = "NaN"
        for (i = 1; i <= n; i++) {
          if (S[i] != sec || F[i] != figs[j] || C[i] != CN[c] || dash(V[i]) || K[i] ~ /^goal/) continue
          v = V[i]; lo = dash(LO[i]) ? V[i] : LO[i]; hi = dash(HI[i]) ? V[i] : HI[i]
          if (mn == "" || lo + 0 < mn) mn = lo + 0
          if (mx == "" || hi + 0 > mx) mx = hi + 0
        }
        printf " %s %s %s", v, lo, hi > dat
      }
      # The value, written over the bars of a lone series.
      if (nfg == 1) printf " %s", q(v == "NaN" ? "" : fmt(v)) > dat
      printf "\n" > dat
    }
  }
  close(dat)
  print "set terminal pngcairo size 800,500 noenhanced font \"DejaVu Sans,9\"" > gp
  print "set output " q(tmp "/" PN[p] ".png") > gp
  print "set title " q(PT[p]) > gp
  print "set ylabel " q(unit) > gp
  print "set grid ytics" > gp
  print "set key top left" > gp
  if (mn > 0 && mx / mn > 10) {
    print "set logscale y" > gp
    printf "set yrange [%g:%g]\n", mn / 2, mx * 2 > gp
  } else {
    printf "set yrange [0:%g]\n", mx * 1.15 > gp
  }
  if (PY[p] == "lines") {
    print "set logscale x 2" > gp
    print "set xtics (" xt ")" > gp
    printf "set xrange [%g:%g]\n", pmin / 1.5, pmax * 1.5 > gp
    print "set key bottom right" > gp
    cmd = "plot "
    for (c = 1; c <= nc; c++)
      cmd = cmd (c > 1 ? ", " : "") q(dat) " index " (c - 1) " using 1:2:3:4 with yerrorlines lw 2 title " q(CN[c])
    print cmd > gp
  } else {
    print "set style data histogram" > gp
    print "set style histogram errorbars gap 1 lw 1" > gp
    print "set style fill solid 0.75 border -1" > gp
    print "set boxwidth 0.9" > gp
    print "set xtics rotate by 15 right scale 0" > gp
    print "set bmargin 6" > gp
    print "set lmargin 22" > gp
    if (nfg == 1) print "set key off" > gp
    cmd = "plot "
    for (j = 1; j <= nfg; j++) {
      leg = FST[sec SUBSEP figs[j]]; sub(/ .*/, "", leg)
      cmd = cmd (j > 1 ? ", \"\"" : q(dat)) " using " (3 * j - 1) ":" (3 * j) ":" (3 * j + 1) (j == 1 ? ":xtic(1)" : "") " title " q(leg)
    }
    if (nfg == 1) cmd = cmd ", \"\" using 0:4:5 with labels offset 0,0.8 notitle"
    print cmd > gp
  }
  close(gp)
  print PN[p] "\tok" > (tmp "/plots")
}
' $files $run

# --- the plots
plotted=
if [ -f "$tmp/plots" ]; then
  if command -v "$gnuplot" >/dev/null 2>&1; then
    mkdir -p "$results/plots"
    while IFS="$(printf '\t')" read -r name state; do
      if [ "$state" != ok ]; then
        say "plot $name: $state"
        continue
      fi
      if "$gnuplot" "$tmp/$name.gp" 2>"$tmp/$name.err" && [ -s "$tmp/$name.png" ]; then
        mv "$tmp/$name.png" "$results/plots/$name.png"
        plotted="$plotted $name"
      else
        say "plot $name: gnuplot failed: $(head -n 3 "$tmp/$name.err")"
      fi
    done <"$tmp/plots"
    noplot="gnuplot failed on this plot (see the output of make bench-report)"
  else
    say "$gnuplot not installed (apt-get install gnuplot-nox): REPORT.md without plots"
    noplot="not drawn: gnuplot is not installed (apt-get install gnuplot-nox), then \`make bench-report\`"
  fi
fi

# Placeholders become images, or a line saying why there is none.
awk -F '\t' -v plotted=" $plotted " -v noplot="${noplot:-}" '
$1 == "@@PLOT" {
  if (index(plotted, " " $2 " ")) print "![" $3 "](plots/" $2 ".png)"
  else print "*" $3 "*: " noplot
  next
}
{ print }' "$tmp/REPORT.md" >"$results/REPORT.md.tmp"
mv "$results/REPORT.md.tmp" "$results/REPORT.md"
if [ -n "$plotted" ]; then
  say "wrote $results/REPORT.md and, in $results/plots,$(printf ' %s.png' $plotted)"
else
  say "wrote $results/REPORT.md, without plots"
fi

# --- the README's summary
if [ -n "$readme" ]; then
  if grep -q '^<!-- bench-summary -->' "$readme" &&
    grep -q '^<!-- /bench-summary -->' "$readme"; then
    awk -v summ="$tmp/summary.md" '
/^<!-- bench-summary -->/ {
  print; print ""
  while ((getline l < summ) > 0) print l
  skip = 1; next
}
/^<!-- \/bench-summary -->/ { skip = 0 }
!skip { print }' "$readme" >"$tmp/README.md"
    cat "$tmp/README.md" >"$readme"
    say "updated the summary in $readme"
  else
    say "$readme has no <!-- bench-summary --> markers: not updated"
  fi
fi
