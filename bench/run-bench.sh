#!/bin/sh
# `make bench`: every section of the benchmark in one run, against one NSD
# on loopback, on the same machine:
#
#   resolve  cold A+AAAA lookups and hosts-file hits for dialtone, glibc's
#            getaddrinfo and c-ares (bench/bench_resolve) -> resolve.md
#   cache    repeated lookups of a cached name for dialtone, libunbound and
#            getaddrinfo, and memory per cached entry (bench/bench_cachecmp)
#            -> cache.md
#   loop     lookups per second from one thread with K in flight, dialtone's
#            event-loop API against c-ares (bench/bench_loop) -> loop.md,
#            loop.tsv
#
# Each section also writes the same figures as SECTION.tsv, which
# bench/report.sh turns into REPORT.md.
#
# usage: bench/run-bench.sh BUILDDIR [RESULTSDIR]
#   DT_BENCH_SECTIONS     sections to run (default "resolve cache loop")
#   DT_BENCH_NAMES        distinct names of the resolve section (default 5000)
#   DT_BENCH_WARM         its warm-up names (default 50)
#   DT_BENCH_MEM          dialtone cache sizes measured for memory per entry
#                         (default "100000 1000000")
#   DT_BENCH_MEM_UNBOUND  libunbound's (default "100000": filling its cache
#                         goes at about 10000 names a second here)
#   DT_BENCH_FILL_LIMIT   seconds after which the cache section stops
#                         filling caches (default 120)
#   DT_BENCH_LOOP_NAMES   lookups per run of the loop section (default
#                         DT_BENCH_NAMES; at most DT_BENCH_NAMES + WARM)
#   DT_BENCH_LOOP_RUNS    its runs per contender and K (default 7)
#
# Needs the Debian packages nsd (the server), util-linux (unshare, taskset,
# mount), iproute2 (ip, to bring lo up in the namespace) and coreutils.
#
# glibc's resolver talks only to port 53 and reads /etc/resolv.conf, so as
# root the script re-executes itself in private mount and network
# namespaces (unshare -mn): there lo is the only interface, NSD listens on
# 127.0.0.1:53, and resolv.conf, hosts and nsswitch.conf are bind-mounted
# over /etc in that mount namespace only. The machine's own files and
# interfaces are never touched. Without namespaces, NSD listens on a high
# loopback port and glibc is skipped.
#
# NSD is pinned to CPU 0. The headline resolve figures have the client on
# CPU 0 too: on a 2-core shared machine, waking the other CPU costs 20-25 µs
# per round trip and swamps the differences between resolvers. A second run
# puts the client on CPU 1. The cache section pins one thread to CPU 0, or
# two to CPUs 0 and 1.
set -eu

build=${1:?usage: run-bench.sh BUILDDIR [RESULTSDIR]}
results=${2:-}
sections=${DT_BENCH_SECTIONS:-resolve cache loop}
names=${DT_BENCH_NAMES:-5000}
warm=${DT_BENCH_WARM:-50}
mem_sizes=${DT_BENCH_MEM-100000 1000000}
mem_unbound=${DT_BENCH_MEM_UNBOUND-100000}
fill_limit=${DT_BENCH_FILL_LIMIT:-120}
resolve_bench="$build/bench/bench_resolve"
cache_bench="$build/bench/bench_cachecmp"
zone=bench.test
hostname_in_hosts=hostsonly.$zone

say() { printf 'run-bench: %s\n' "$*" >&2; }

want() { # true when section $1 is to run
  case " $sections " in *" $1 "*) return 0 ;; esac
  return 1
}

# --- checks, before anything is set up -------------------------------------
for s in $sections; do
  case $s in
  resolve | cache | loop) ;;
  *) say "unknown section $s (resolve, cache, loop)"; exit 1 ;;
  esac
done
# bench_resolve also probes NSD, so every run needs it.
[ -x "$resolve_bench" ] || { say "$resolve_bench is not built (make bench builds it)"; exit 1; }
if want cache && [ ! -x "$cache_bench" ]; then
  say "$cache_bench is not built (make bench builds it)"
  exit 1
fi
nsd=$(command -v nsd 2>/dev/null || true)
if [ -z "$nsd" ] && [ -x /usr/sbin/nsd ]; then
  nsd=/usr/sbin/nsd
fi
[ -n "$nsd" ] || { say "nsd not found: apt-get install nsd"; exit 1; }
case $names$warm$fill_limit in *[!0-9]*) say "DT_BENCH_NAMES, DT_BENCH_WARM and DT_BENCH_FILL_LIMIT are counts"; exit 1 ;; esac
mem_names=0
for n in $mem_sizes $mem_unbound; do
  case $n in '' | *[!0-9]*) say "DT_BENCH_MEM and DT_BENCH_MEM_UNBOUND are lists of counts"; exit 1 ;; esac
  [ "$n" -gt $mem_names ] && mem_names=$n
done
want cache || mem_names=0
if want loop; then
  loop_bench="$build/bench/bench_loop"
  loop_names=${DT_BENCH_LOOP_NAMES:-$names}
  loop_runs=${DT_BENCH_LOOP_RUNS:-7}
  [ -x "$loop_bench" ] || { say "$loop_bench is not built (make bench-loop builds it)"; exit 1; }
  case $loop_names$loop_runs in *[!0-9]*) say "DT_BENCH_LOOP_NAMES and DT_BENCH_LOOP_RUNS are counts"; exit 1 ;; esac
  # The zone holds names + warm names n<i>; the loop section reuses them.
  [ "$loop_names" -le $((names + warm)) ] || { say "DT_BENCH_LOOP_NAMES is at most DT_BENCH_NAMES + DT_BENCH_WARM"; exit 1; }
fi

# --- into the namespaces, when we can ----------------------------------------
skip_glibc=
if [ "${DT_BENCH_NS:-}" != inside ]; then
  if [ "$(id -u)" != 0 ]; then
    skip_glibc="SKIP glibc: needs unshare -mn (root)"
  elif ! command -v ip >/dev/null 2>&1; then
    skip_glibc="SKIP glibc: needs ip (apt-get install iproute2) to bring lo up in the namespace"
  elif ! unshare -mn --propagation private true 2>/dev/null; then
    skip_glibc="SKIP glibc: needs unshare -mn (root), which failed here"
  else
    DT_BENCH_NS=inside exec unshare -mn --propagation private \
      sh "$0" "$@"
  fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dt-bench.XXXXXX")
nsd_pid=
bench_pid=
cleanup() {
  if [ -n "$bench_pid" ]; then
    kill "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  if [ -n "$nsd_pid" ]; then
    kill "$nsd_pid" 2>/dev/null || true
    wait "$nsd_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- /etc inside the mount namespace ---------------------------------------------
setup_etc() {
  if [ "${DT_BENCH_NS:-}" = inside ]; then
    # unshare made the mounts private already; said again so that nothing
    # below can ever reach the machine's own /etc.
    mount --make-rprivate /
    ip link set lo up
    printf 'nameserver 127.0.0.1\noptions ndots:1 timeout:2 attempts:1\n' \
      >"$tmp/resolv.conf"
    # Only the hosts line changes; the other databases stay the machine's.
    if grep -q '^hosts:' /etc/nsswitch.conf 2>/dev/null; then
      sed 's/^hosts:.*/hosts: files dns/' /etc/nsswitch.conf >"$tmp/nsswitch.conf"
    else
      { cat /etc/nsswitch.conf 2>/dev/null || true; echo 'hosts: files dns'; } \
        >"$tmp/nsswitch.conf"
    fi
  fi

  # A small hosts file, like a fresh system's, plus the name the hosts-file
  # figures look up (it is not in the zone, so a miss cannot pass for a hit).
  cat >"$tmp/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	benchhost
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
192.0.2.10	$hostname_in_hosts hostsonly
2001:db8::10	$hostname_in_hosts hostsonly
EOF

  if [ "${DT_BENCH_NS:-}" = inside ]; then
    mount --bind "$tmp/resolv.conf" /etc/resolv.conf
    mount --bind "$tmp/hosts" /etc/hosts
    mount --bind "$tmp/nsswitch.conf" /etc/nsswitch.conf
    # No nscd: glibc must do its own lookups.
    for d in /run/nscd /var/run/nscd; do
      [ -d "$d" ] && mount -t tmpfs none "$d"
    done
  fi
  return 0
}

# --- the zone -----------------------------------------------------------------
# Name n<i> has A 198.18.(i/256).(i%256) and AAAA 2001:db8::<i in hex>, which
# is what both programs check answers against; there are at least 2 of
# them (the cache section's hit names are n0 and n1). Name m<i> (the
# cache section's memory names) has one A record, 10.(i/65536).(i/256%256).
# (i%256).
write_zone() {
  n=$((names + warm))
  [ $n -ge 2 ] || n=2
  awk -v n=$n -v m=$mem_names -v zone=$zone 'BEGIN {
    printf "$ORIGIN %s.\n$TTL 3600\n", zone
    printf "@ SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60\n", zone, zone
    printf "@ NS ns\nns A 127.0.0.1\n"
    for (i = 0; i < n; i++) {
      printf "n%d A 198.18.%d.%d\n", i, int(i / 256), i % 256
      printf "n%d AAAA 2001:db8::%x\n", i, i
    }
    for (i = 0; i < m; i++) {
      printf "m%d A 10.%d.%d.%d\n", i, int(i / 65536), int(i / 256) % 256, i % 256
    }
  }' >"$tmp/bench.zone"
}

# --- NSD ----------------------------------------------------------------------
write_conf() {
  cat >"$tmp/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$1
  # One process, pinned with its parent by taskset.
  server-count: 1
  # Whoever runs the bench; every file in the private directory.
  username: ""
  chroot: ""
  zonesdir: "$tmp"
  database: ""
  zonelistfile: "$tmp/zone.list"
  xfrdfile: "$tmp/xfrd.state"
  xfrdir: "$tmp"
  pidfile: "$tmp/nsd.pid"
  logfile: "$tmp/nsd.log"
  verbosity: 1
  # Debian builds NSD with response rate limiting: thousands of questions
  # from one address would be dropped or truncated. 0 turns it off.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  # Answers only, like a recursive resolver's: no NS in authority.
  minimal-responses: yes
  round-robin: no
remote-control:
  control-enable: no
zone:
  name: "$zone"
  zonefile: "$tmp/bench.zone"
EOF
}

# Starts NSD on port $1 pinned to CPU 0; true once it answers for the zone
# (a zone of a million names takes it a few seconds to load).
start_nsd() {
  write_conf "$1"
  taskset -c 0 "$nsd" -d -c "$tmp/nsd.conf" >>"$tmp/nsd.log" 2>&1 &
  nsd_pid=$!
  i=0
  while [ $i -lt 300 ]; do
    if ! kill -0 "$nsd_pid" 2>/dev/null; then
      wait "$nsd_pid" 2>/dev/null || true
      nsd_pid=
      return 1
    fi
    if "$resolve_bench" -s "127.0.0.1:$1" -d $zone -c none -n 0 -W 100 \
      >/dev/null 2>&1; then
      return 0
    fi
    i=$((i + 1))
  done
  kill "$nsd_pid" 2>/dev/null || true
  wait "$nsd_pid" 2>/dev/null || true
  nsd_pid=
  return 1
}

# Sets port to where NSD answers.
start_server() {
  if [ "${DT_BENCH_NS:-}" = inside ]; then
    port=53
    start_nsd $port || {
      say "NSD did not start on 127.0.0.1:53:"
      cat "$tmp/nsd.log" >&2
      exit 1
    }
  else
    # A port that may be taken: NSD then exits at once and the next is tried.
    port=$((20000 + $$ % 30000))
    tries=0
    until start_nsd $port; do
      tries=$((tries + 1))
      if [ $tries -ge 5 ]; then
        say "NSD did not start on a loopback port:"
        cat "$tmp/nsd.log" >&2
        exit 1
      fi
      port=$((port + 1))
    done
  fi
}

# --- helpers of the sections ----------------------------------------------------
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

machine_lines() {
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(uname -sr), $ncpu CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  # Other work on a shared machine moves the figures: say how busy it was.
  echo "- load average before the section: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
}

server_line() {
  if [ -n "$skip_glibc" ]; then
    echo "- server: NSD on 127.0.0.1:$port, no namespaces"
  else
    echo "- server: NSD on 127.0.0.1:53 in a private network namespace; resolv.conf \`nameserver 127.0.0.1\`, \`hosts: files dns\`, no nscd"
  fi
}

# Runs a benchmark program appending to $out_md, in the background with a
# wait, so that a signal stops the run at once instead of after it ends.
run_bench() {
  "$@" >>"$out_md" &
  bench_pid=$!
  wait "$bench_pid"
  bench_pid=
}

# Shows a section's tables and copies them, and its TSV, to RESULTSDIR
# as $1.md and $1.tsv.
publish() {
  cat "$out_md"
  if [ -n "$results" ]; then
    mkdir -p "$results"
    cp "$out_md" "$results/$1.md"
    cp "$out_tsv" "$results/$1.tsv"
    say "tables written to $results/$1.md and $1.tsv"
  fi
}

# --- section: resolve -------------------------------------------------------------
section_resolve() {
  out_md="$tmp/resolve.md"
  out_tsv="$tmp/resolve.tsv"
  : >"$out_tsv"
  # glibc stays in the list without namespaces: bench_resolve then says
  # why it skips it, in the tables and in the TSV.
  contenders=dialtone,glibc,cares,cares-query
  hosts_glibc=yes
  if [ -n "$skip_glibc" ]; then
    hosts_glibc=no
  fi
  common="-s 127.0.0.1:$port -d $zone -n $names -w $warm -c $contenders -l 50 -T $out_tsv"

  {
    echo "## Resolver benchmark: cold A+AAAA lookups and hosts-file hits"
    echo
    echo "- command: \`make bench\` (bench/run-bench.sh; DT_BENCH_NAMES=$names, DT_BENCH_WARM=$warm)"
    machine_lines
    echo "- glibc $(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //'), c-ares $(pkg-config --modversion libcares 2>/dev/null || echo '(none)'), $("$nsd" -v 2>&1 | head -n 1)"
    server_line
    if [ -n "$skip_glibc" ]; then
      echo
      echo "$skip_glibc"
    fi
    echo
    echo "Every contender gets the same NSD answers (one A and one AAAA per name, minimal responses)."
    echo "Queries: dialtone sends EDNS0 (its default), glibc and c-ares 1.18 do not."
    echo "Sockets: dialtone opens a connected UDP socket per question (two per lookup); glibc and c-ares 1.18"
    echo "send both questions on one socket per lookup."
    echo "Results: getaddrinfo and ares_getaddrinfo sort the addresses (RFC 6724: a UDP socket and connect per"
    echo "address, and for glibc a netlink dump of local addresses) and allocate an addrinfo list;"
    echo "dt_resolver_lookup_addrs fills caller storage and leaves ordering to its dialer."
    echo "The c-ares \`ares_query\` row is c-ares's query engine alone (two ares_query, replies parsed), for reference."
    echo
  } >"$out_md"

  run_bench taskset -c 0 timeout 100 "$resolve_bench" $common \
    -t "Pinned: client and server on CPU 0 (headline)" \
    -f cold_pinned -D "client and server on CPU 0" -P resolve-latency \
    -H "$tmp/hosts" -N $hostname_in_hosts -G $hosts_glibc
  if [ "$ncpu" -ge 2 ]; then
    run_bench taskset -c 1 timeout 100 "$resolve_bench" $common \
      -t "Split: client on CPU 1, server on CPU 0" -f cold_split \
      -D "client on CPU 1, server on CPU 0"
  else
    printf 'SKIP split run: one CPU only\n\n' >>"$out_md"
  fi
  publish resolve
}

# --- section: cache -----------------------------------------------------------------
section_cache() {
  out_md="$tmp/cache.md"
  out_tsv="$tmp/cache.tsv"
  : >"$out_tsv"
  cpus=0
  [ "$ncpu" -ge 2 ] && cpus=0,1
  {
    echo "## Cache benchmark: cached lookups and memory per entry"
    echo
    echo "- command: \`make bench\` (bench/run-bench.sh; DT_BENCH_MEM=\"$mem_sizes\", DT_BENCH_MEM_UNBOUND=\"$mem_unbound\", DT_BENCH_FILL_LIMIT=$fill_limit)"
    machine_lines
    echo "- glibc $(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //'), $("$nsd" -v 2>&1 | head -n 1)"
    server_line
  } >"$out_md"
  # The program adds the libunbound line, then its tables; it stops filling
  # caches fill_limit seconds after its start, and timeout is the backstop.
  run_bench taskset -c $cpus timeout $((fill_limit + 30)) "$cache_bench" \
    -s "127.0.0.1:$port" -d $zone -p $cpus -l $fill_limit \
    -m "$(echo $mem_sizes | tr ' ' ,)" -u "$(echo $mem_unbound | tr ' ' ,)" \
    -T "$out_tsv"
  publish cache
}

# --- section: loop ---------------------------------------------------------------
# The headline pins bench_loop and NSD to CPU 0, like the resolve section's:
# one CPU does all the work, so a figure is the CPU time a lookup costs
# both ends, not how well the scheduler spreads them. A second run puts
# the client on CPU 1.
section_loop() {
  out_md="$tmp/loop.md"
  out_tsv="$tmp/loop.tsv"
  : >"$out_tsv"
  {
    echo "## Event-loop benchmark: lookups per second, one thread, K in flight"
    echo
    echo "- command: \`make bench-loop\` (bench/run-bench.sh, section loop; DT_BENCH_LOOP_NAMES=$loop_names, DT_BENCH_LOOP_RUNS=$loop_runs)"
    machine_lines
    echo "- c-ares $(pkg-config --modversion libcares 2>/dev/null || echo '(none)'), $("$nsd" -v 2>&1 | head -n 1); net.core.rmem_default $(cat /proc/sys/net/core/rmem_default 2>/dev/null || echo '?'), rmem_max $(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo '?')"
    server_line
    echo "- pinning: NSD on CPU 0; headline with bench_loop on CPU 0 too, second run with it on CPU 1"
    echo
    echo "Each run looks up $loop_names distinct names (A and AAAA each, AF_UNSPEC) keeping K in flight: every"
    echo "completion starts the next name. Figure = right answers per second from the first start to the last"
    echo "completion; failures (timeouts, errors) and wrong or incomplete answers are counted in the second table,"
    echo "never as answers. Every run has a fresh dialtone resolver (an empty cache: names are distinct, so"
    echo "nothing can come from it; the program checks that the cache served nothing, DT_QUERY_NOCACHE is not"
    echo "used) or a fresh c-ares channel (c-ares 1.18 has no cache). Both: 2000 ms timeout, one try, no search"
    echo "list, no hosts file. c-ares runs through its socket-state callback and epoll (never select), once"
    echo "with its default socket options and once with ARES_OPT_SOCK_RCVBUF 4 MiB (the kernel caps it at"
    echo "rmem_max). dialtone runs on one \`dt_loop_t\`, through its watch/timer callbacks and epoll, and"
    echo "through \`dt_loop_run\` (poll). raw-shared is a reference, not a contender: no library, 16 connected UDP"
    echo "sockets made before the clock starts (4 MiB receive buffers), hand-built questions without EDNS,"
    echo "replies matched by ID only, no retries: the ceiling one thread reaches against this server, never"
    echo "part of the goal. Client CPU per lookup: bench_loop's own user + system time over a run"
    echo "÷ its lookups (NSD's is not in it); it moves less than the rate when other work shares the machine."
    echo "Ratios (tables and loop.tsv): this contender's median ÷ dialtone-epoll's at the same K, for lookups/s"
    echo "(above 1: the contender is faster) and for CPU µs per lookup (above 1: it costs more) alike."
    echo "The issue's goal (dialtone at 256 in flight at least 1.5 × c-ares's best figure, any K, either"
    echo "configuration) is judged in loop.tsv by the last run, over both runs' figures: dialtone's best at"
    echo "K=256 (either style, either run) ÷ c-ares's best (either socket option, any K, either run)."
    echo
  } >"$out_md"
  common="-s 127.0.0.1:$port -d $zone -n $loop_names -r $loop_runs -T $out_tsv"
  # The issue's goal spans both runs: the last one judges it (-G yes),
  # reading the first one's figures back from loop.tsv.
  last_goal=yes
  [ "$ncpu" -ge 2 ] && last_goal=no
  run_bench taskset -c 0 timeout 3000 "$loop_bench" $common -P pinned \
    -t "Pinned: client and server on CPU 0 (headline)" -p loop-rate \
    -G $last_goal
  if [ "$ncpu" -ge 2 ]; then
    run_bench taskset -c 1 timeout 3000 "$loop_bench" $common -P split \
      -t "Split: client on CPU 1, server on CPU 0" -G yes
  else
    printf 'SKIP split run: one CPU only\n\n' >>"$out_md"
  fi
  publish loop
}

# --- the run ------------------------------------------------------------------------
setup_etc
write_zone
start_server
for s in $sections; do
  "section_$s"
done
