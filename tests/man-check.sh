#!/bin/sh
# The manual pages format without a warning (groff -ww, and mandoc's and
# lexgrog's parsers when installed), and dialtone(3) keeps up with the
# headers: every public function is named in it and its table of statuses
# matches DT_STATUS_MAP, text for text.
set -u
src=${srcdir:-.}
pages="$src/man/dialtone.3 $src/man/dtdig.1 $src/man/dtdial.1"
fail=0
bad() {
  echo "FAIL: $*" >&2
  fail=1
}

if ! command -v groff >/dev/null 2>&1; then
  echo "SKIP: groff is not installed (apt-get install groff-base)"
  exit 77
fi
for p in $pages; do
  # -t: dialtone(3) has a table; -Tutf8 formats for a terminal, as man does.
  out=$(groff -t -man -Tutf8 -ww -z "$p" 2>&1) || bad "groff failed on $p"
  [ -z "$out" ] || bad "groff warns about $p: $out"
  if command -v mandoc >/dev/null 2>&1; then
    out=$(mandoc -Tlint -Wwarning "$p" 2>&1) || bad "mandoc: $out"
  fi
  if command -v lexgrog >/dev/null 2>&1; then
    lexgrog "$p" >/dev/null 2>&1 || bad "lexgrog cannot parse the NAME of $p"
  fi
done

man3="$src/man/dialtone.3"
funcs=$(sed -n 's/^DT_EXTERN[^(]*[ *]\(dt_[a-z0-9_]*\)(.*/\1/p; s/^\(dt_[a-z0-9_]*\)(.*/\1/p' \
  "$src"/include/dialtone/*.h | sort -u)
[ -n "$funcs" ] || bad "no public function found in include/dialtone/"
for f in $funcs; do
  grep -qw "$f" "$man3" || bad "dialtone(3) does not name $f()"
done

tab=$(printf '\t')
n=0
for line in $(sed -n 's/^ *X(\([A-Z0-9]*\), "\([^"]*\)").*/\1:\2/p' \
  "$src/include/dialtone/common.h" | tr ' ' '~'); do
  name=${line%%:*}
  text=$(echo "${line#*:}" | tr '~' ' ')
  grep -qF "DT_$name$tab$text" "$man3" ||
    bad "dialtone(3) lacks the status line \"DT_$name	$text\""
  n=$((n + 1))
done
[ "$n" -gt 30 ] || bad "found only $n statuses in common.h"
rows=$(sed -n '/^\.TS/,/^\.TE/p' "$man3" | grep -c "^DT_")
[ "$rows" -eq "$n" ] || bad "dialtone(3) lists $rows statuses, common.h $n"

[ $fail -eq 0 ] && echo "PASS: $(echo $pages | wc -w) manual pages, $(echo $funcs | wc -w) functions, $n statuses"
exit $fail
