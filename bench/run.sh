#!/usr/bin/env bash
# bench/run.sh: buoni's performance suite (issue 6), one command, one table.
#
#   bench/run.sh           the full run (under 10 minutes on a 2-core VM):
#                          prints the table and writes bench/results/latest.md
#   bench/run.sh --smoke   every part for a moment (CI's bench_smoke test): checks
#                          that each part printed its RESULT line with a positive
#                          figure; never a speed. Writes nothing in the repository.
#
# Parts: the disk's raw fdatasync rate (bench/fsync_bench.cpp); durable
# redemptions through the engine at 1/16/64/256 submitters
# (bench/engine_bench.cpp); HTTP load against a real `buoni serve` seeded
# through the CLI (bench/http_load.cpp); the PostgreSQL 15 baseline, the same
# redemption as one transaction, driven by pgbench (bench/pg/); the resident
# memory of `buoni serve` over 1,000,000 cards issued with `buoni issue`.
#
# Environment: BUONI_BUILD_DIR an existing build to use (default: build
# build-bench here); BUONI_BENCH_DIR where the temporary work directory goes
# (default /var/tmp: on disk, as tmpfs would make fsync free). Installs
# Debian's postgresql when it is missing (as root). Everything it starts is
# stopped and its work directory removed on exit.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
mode=full
out_file="$here/results/latest.md"
for arg in "$@"; do
  case "$arg" in
    --smoke) mode=smoke ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$mode" = full ]; then
  fsync_s=5; engine_s=5; engine_steps="1,16,64,256"
  http_s=10; http_warmup_s=2; pg_s=10; pg_steps="1 16 64 256"
  mem_programmes=5; mem_cards_each=200000; mem_load_s=3
else
  fsync_s=0.5; engine_s=0.5; engine_steps="1,64"
  http_s=1; http_warmup_s=0.3; pg_s=1; pg_steps="1 64"
  mem_programmes=2; mem_cards_each=1000; mem_load_s=0.5
fi
http_connections=64
http_cards=10000
card_amount_cents=500000  # EUR 5,000 a card: the runs never drain one

pg_bin=/usr/lib/postgresql/15/bin
started_s=$(date +%s)
work=""
serve_pid=""
pg_data=""
pg_user=""

log() { printf '[%3ds] %s\n' "$(($(date +%s) - started_s))" "$*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

# ---- cleanup -------------------------------------------------------------

stop_serve() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  serve_pid=""
}

# Runs a PostgreSQL program as its user, from a directory that user can read.
as_pg() {
  if [ -n "$pg_user" ]; then
    (cd "$work" && runuser -u "$pg_user" -- "$@")
  else
    (cd "$work" && "$@")
  fi
}

stop_pg() {
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 ||
      as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  pg_data=""
}

cleanup() {
  stop_serve
  stop_pg
  if [ -n "$work" ] && [ -d "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ---------------------------------------------------------------

build() {
  if [ -n "${BUONI_BUILD_DIR:-}" ]; then
    build_dir="$BUONI_BUILD_DIR"
  else
    build_dir="$repo/build-bench"
    bash "$repo/scripts/install-deps.sh"
    if [ ! -f "$build_dir/build.ninja" ]; then
      cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBUONI_WERROR=ON >/dev/null
    fi
    log "building buoni and the benchmarks in $build_dir"
    cmake --build "$build_dir" --target buoni engine_bench http_load fsync_bench >/dev/null
  fi
  buoni="$build_dir/tools/buoni"
  for f in "$buoni" "$build_dir/bench/engine_bench" "$build_dir/bench/http_load" \
    "$build_dir/bench/fsync_bench"; do
    [ -x "$f" ] || die "$f is missing (build it, or set BUONI_BUILD_DIR)"
  done
}

# PostgreSQL 15's server and pgbench from Debian (scripts/install-deps.sh
# installs them, without Debian's default cluster). Missing: stop, smoke too,
# so the baseline cannot rot unnoticed.
ensure_postgres() {
  if [ ! -x "$pg_bin/pgbench" ] || [ ! -x "$pg_bin/initdb" ]; then
    die "PostgreSQL 15 is missing: run scripts/install-deps.sh as root"
  fi
  if [ "$(id -u)" -eq 0 ]; then  # the server refuses to run as root
    pg_user=postgres
    if ! id -u "$pg_user" >/dev/null 2>&1; then
      pg_user="buoni-bench-pg"
      id -u "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home "$pg_user"
    fi
  fi
}

make_work_dir() {
  local parent="${BUONI_BENCH_DIR:-/var/tmp}"
  work="$(mktemp -d "$parent/buoni-bench.XXXXXX")"
  chmod 711 "$work"  # the PostgreSQL user must reach its own directory inside
  results="$work/results.txt"
  : >"$results"
}

describe_machine() {
  local cpu mem_gib fs dev disk
  cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)"
  mem_gib="$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
  fs="$(findmnt -n -o SOURCE,FSTYPE,OPTIONS -T "$work" | head -n1)"
  dev="$(findmnt -n -o SOURCE -T "$work" | head -n1)"
  disk="$(lsblk -dn -o NAME,SIZE,ROTA,MODEL "$dev" 2>/dev/null | head -n1 |
    awk '{ m = ""; for (i = 4; i <= NF; i++) m = m " " $i
           printf "%s, %s, rotational=%s, model:%s", $1, $2, $3, m == "" ? " unknown" : m }' || true)"
  machine_lines=(
    "CPU: ${cpu:-unknown}, $(nproc) cores"
    "RAM: ${mem_gib} GiB"
    "disk: ${disk:-$dev}; filesystem: $fs (work dir $work)"
    "kernel: $(uname -sr); OS: $(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release)"
    "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  )
  case "$fs" in *tmpfs*) log "WARNING: the work dir is on tmpfs: fsync is free there" ;; esac
}

# Appends a part's RESULT lines to the results file and echoes them.
record() { { grep '^RESULT \|^STATUS ' || true; } | tee -a "$results" >&2; }

# The value of key=VALUE in the first RESULT line starting with PREFIX.
value_of() {
  { grep "^RESULT $1" "$results" || true; } | head -n1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# ---- the parts -------------------------------------------------------------

part_fsync() {
  log "disk: ${fsync_s} s of small appends, each fdatasync'd"
  "$build_dir/bench/fsync_bench" --file "$work/fsync.data" --seconds "$fsync_s" |
    tee "$work/fsync.out" | record
}

part_engine() {
  log "engine: ${engine_s} s per step at $engine_steps submitters"
  "$build_dir/bench/engine_bench" "$work/engine" "$engine_s" "$engine_steps" |
    tee "$work/engine.out" | record
}

# A bulk issuance CSV: COUNT cards of card_amount_cents for programme P.
make_csv() {
  awk -v p="$1" -v n="$2" -v a="$card_amount_cents" \
    'BEGIN { print "beneficiary_ref,amount_cents"; for (i = 1; i <= n; i++) printf "%s-%d,%d\n", p, i, a }'
}

# The card ids of the issue entries from ledger seq SINCE on (buoni export).
card_ids() {
  "$buoni" --data "$1" export --format jsonl --since "$2" --out "$work/export.jsonl" >/dev/null
  grep '"kind":"issue"' "$work/export.jsonl" | sed 's/.*"card":"\([^"]*\)".*/\1/'
  rm -f "$work/export.jsonl"
}

# A data directory with programmes P1..PN (room for COUNT cards each) and a
# shop taking them all, through the CLI; sets shop_key.
seed_store() {
  local data="$1" count="$3" today until ids=()
  read -r -a ids <<<"$2"
  today="$(date -u +%F)"
  until="$(date -u -d '+60 days' +%F)"
  "$buoni" --data "$data" init >/dev/null
  local p shop_args=()
  for p in "${ids[@]}"; do
    "$buoni" --data "$data" programme create --id "$p" --name "bench $p" \
      --budget-cents $((count * card_amount_cents)) --valid-from "$today" \
      --valid-until "$until" >/dev/null
    shop_args+=(--programme "$p")
  done
  shop_key="$("$buoni" --data "$data" merchant add --id shop --name "Bench shop" \
    --vat-number 01234567897 "${shop_args[@]}" | awk '$1 == "api_key" { print $2 }')"
  [ -n "$shop_key" ] || die "merchant add printed no api_key"
}

# Starts `buoni serve` on DATA (port picked by the kernel); sets serve_pid, url.
start_serve() {
  : >"$work/serve.out"
  "$buoni" --data "$1" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>/dev/null &
  serve_pid=$!
  local _
  for _ in $(seq 1 200); do
    url="$(sed -n 's/^listening on //p' "$work/serve.out")"
    [ -n "$url" ] && return 0
    kill -0 "$serve_pid" 2>/dev/null || die "buoni serve exited before listening"
    sleep 0.05
  done
  die "buoni serve did not start listening"
}

# GET PATH from the served url with bash's /dev/tcp (no curl needed): the body.
http_get() {
  local hostport="${url#http://}" fd
  exec {fd}<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$hostport" >&"$fd"
  tr -d '\r' <&"$fd" | sed '1,/^$/d'
  exec {fd}>&-
}

# The writer's committed batches and commands so far (from /metrics).
writer_counts() {
  http_get /metrics |
    awk '/^buoni_writer_batch_size_sum/ { s = $2 } /^buoni_writer_batch_size_count/ { c = $2 }
         END { printf "%.0f %.0f\n", c, s }'
}

part_http() {
  log "HTTP: seeding $http_cards cards through the CLI"
  seed_store "$work/http" bench "$http_cards"
  make_csv bench "$http_cards" >"$work/http.csv"
  "$buoni" --data "$work/http" issue --programme bench --csv "$work/http.csv" >/dev/null
  card_ids "$work/http" 1 >"$work/http-cards.txt"
  start_serve "$work/http"
  log "HTTP: $http_connections connections, ${http_warmup_s} s warm-up + ${http_s} s on $url"
  local before after
  before="$(writer_counts)"
  "$build_dir/bench/http_load" --url "$url" --key "$shop_key" --cards "$work/http-cards.txt" \
    --connections "$http_connections" --seconds "$http_s" --warmup-seconds "$http_warmup_s" \
    --label http >"$work/http.out"
  after="$(writer_counts)"
  stop_serve
  record <"$work/http.out"
  echo "$before $after" | awk '{ b = $3 - $1; mean = b > 0 ? ($4 - $2) / b : 0
    printf "RESULT httpwriter batches=%d batch=%.1f\n", b, mean }' | record
}

# A cluster of our own in the work dir: unix socket only, fsync and
# synchronous_commit on (the defaults, spelled out), room for 256 clients.
start_pg() {
  local dir="$work/pg"
  mkdir -p "$dir"
  cp "$here/pg/schema.sql" "$here/pg/redeem.pgbench" "$dir/"
  [ -z "$pg_user" ] || chown -R "$pg_user" "$dir"
  as_pg "$pg_bin/initdb" -D "$dir/data" -U bench --auth=trust -E UTF8 --no-sync >/dev/null
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 4GB
CONF
  pg_data="$dir/data"
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$dir/server.log" -w start >/dev/null
  as_pg "$pg_bin/psql" -q -h "$dir" -U bench -d postgres -v ON_ERROR_STOP=1 \
    -f "$dir/schema.sql" >/dev/null
}

# Percentiles (ms) of pgbench's per-transaction logs (3rd field: microseconds).
pg_percentiles() {
  cat "$@" | awk '{ print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END {
      split("0.50 0.99 0.999", f, " "); split("p50_ms p99_ms p999_ms", k, " ")
      for (i = 1; i <= 3; i++) { j = int(f[i] * NR) + 1; if (j > NR) j = NR
        printf "%s=%.3f ", k[i], NR ? v[j] / 1000 : 0 }
    }'
}

pg_step() {
  local c="$1" dir="$work/pg"
  as_pg "$pg_bin/pgbench" -h "$dir" -U bench -n -M prepared -f "$dir/redeem.pgbench" \
    -D step="$c" -D n=0 -c "$c" -j "$c" -T "$pg_s" -l --log-prefix="$dir/tx-c$c" postgres \
    >"$dir/pgbench-c$c.out" 2>&1 || { cat "$dir/pgbench-c$c.out" >&2; die "pgbench -c $c failed"; }
  local tps failed
  tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$dir/pgbench-c$c.out")"
  failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$dir/pgbench-c$c.out")"
  echo "RESULT pg c=$c per_s=${tps:-0} $(pg_percentiles "$dir/tx-c$c".*)failed=${failed:-0}" |
    record
  rm -f "$dir/tx-c$c".*
}

part_pg() {
  log "PostgreSQL: own cluster in $work/pg, 10,000 cards"
  start_pg
  local c
  for c in $pg_steps; do
    log "PostgreSQL: pgbench -c $c -j $c -T $pg_s"
    pg_step "$c"
  done
  local rows
  rows="$(as_pg "$pg_bin/psql" -h "$work/pg" -U bench -d postgres -Atc \
    'SELECT count(*) FROM ledger')"
  echo "RESULT pgledger rows=$rows" | record
  stop_pg
}

# 1,000,000 cards (full run): 5 programmes of 200,000 (the most one may
# have, engine/limits.h), each one `buoni issue` of a CSV; then `buoni
# serve` on that store, a few seconds of load, and its VmRSS/VmHWM.
part_memory() {
  local data="$work/mem" names=() p total=$((mem_programmes * mem_cards_each))
  for p in $(seq 1 "$mem_programmes"); do names+=("p$p"); done
  log "memory: issuing $total cards ($mem_programmes x buoni issue of $mem_cards_each)"
  seed_store "$data" "${names[*]}" "$mem_cards_each"
  for p in "${names[@]}"; do make_csv "$p" "$mem_cards_each" >"$work/$p.csv"; done
  local t0 t1
  t0="$(date +%s.%N)"
  for p in "${names[@]}"; do
    "$buoni" --data "$data" issue --programme "$p" --csv "$work/$p.csv" >/dev/null
  done
  t1="$(date +%s.%N)"
  echo "$total $t0 $t1" | awk '{ s = $3 - $2; rate = s > 0 ? $1 / s : 0
    printf "RESULT issue cards=%d seconds=%.1f per_s=%.0f\n", $1, s, rate }' | record
  rm -f "$work"/p*.csv
  local sample=$((total < 10000 ? total : 10000))
  card_ids "$data" $((mem_programmes + total - sample + 1)) >"$work/mem-cards.txt"
  start_serve "$data"
  local idle_kib idle_hwm_kib
  idle_kib="$(awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status")"
  idle_hwm_kib="$(awk '/^VmHWM/ { print $2 }' "/proc/$serve_pid/status")"
  log "memory: ${mem_load_s} s of load on $url, then VmRSS"
  "$build_dir/bench/http_load" --url "$url" --key "$shop_key" --cards "$work/mem-cards.txt" \
    --connections "$http_connections" --seconds "$mem_load_s" --warmup-seconds 0 \
    --label memload | record
  awk -v idle="$idle_kib" -v idle_hwm="$idle_hwm_kib" -v cards="$total" \
    '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 }
     END { printf "RESULT memory cards=%d rss_kib=%d hwm_kib=%d idle_rss_kib=%d idle_hwm_kib=%d\n",
           cards, r, h, idle, idle_hwm }' \
    "/proc/$serve_pid/status" | record
  echo "RESULT store cards=$total kib=$(du -sk "$data/db" | cut -f1)" | record
  stop_serve
}

# ---- the table -------------------------------------------------------------

# X rounded, with thousands separators.
num() {
  awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); n = ""
    while (length(s) > 3) { n = "," substr(s, length(s) - 2) n; s = substr(s, 1, length(s) - 3) }
    print s n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }
# "yes" when A OP B holds (OP: ge or lt), else "no".
holds() {
  awk -v a="$1" -v b="$3" -v op="$2" \
    'BEGIN { ok = op == "ge" ? a >= b : a < b; print (a != "" && ok) ? "yes" : "no" }'
}
ms() { [ -n "$1" ] && printf '%.2f' "$1" || printf -- '-'; }

# The most a writer that makes one fsync per batch of at most C requests can do.
ceiling() { num "$(awk -v c="$1" -v f="$(value_of "fsync " per_s)" 'BEGIN { print c * f }')"; }

pg_cells() {  # PostgreSQL's per_s and latencies at concurrency C, as table cells
  local c="$1" per_s
  per_s="$(value_of "pg c=$c " per_s)"
  if [ -z "$per_s" ]; then printf -- '- | -'; return; fi
  printf '%s | %s / %s / %s' "$(num "$per_s")" "$(ms "$(value_of "pg c=$c " p50_ms)")" \
    "$(ms "$(value_of "pg c=$c " p99_ms)")" "$(ms "$(value_of "pg c=$c " p999_ms)")"
}

engine_rows() {
  local c per_s pg target met
  for c in ${engine_steps//,/ }; do
    per_s="$(value_of "engine c=$c " per_s)"
    pg="$(value_of "pg c=$c " per_s)"
    target="-"; met="-"
    if [ "$c" = 256 ]; then
      target="≥ 100,000/s; ≥ 5x PostgreSQL"
      met="$(holds "$per_s" ge 100000) / $(holds "$(ratio "$per_s" "$pg" | tr -d x)" ge 5)"
    fi
    echo "| engine: durable redemptions/s | $c | $(num "$per_s") | $(ms "$(value_of "engine c=$c " p50_ms)") | $(ms "$(value_of "engine c=$c " p99_ms)") | $(ms "$(value_of "engine c=$c " p999_ms)") | $(value_of "engine c=$c " batch) | $(ceiling "$c") | $(pg_cells "$c") | $(ratio "$per_s" "$pg") | $target | $met |"
  done
}

http_rows() {
  local c=$http_connections req redeem p99 pg
  req="$(value_of "http " req_per_s)"; redeem="$(value_of "http " redeem_per_s)"
  p99="$(value_of "http " p99_ms)"; pg="$(value_of "pg c=$c " per_s)"
  local lat batch
  lat="$(ms "$(value_of "http " p50_ms)") | $(ms "$p99") | $(ms "$(value_of "http " p999_ms)")"
  batch="$(value_of "httpwriter " batch)"
  echo "| HTTP: requests/s (90% redemptions, 10% balance look-ups) | $c | $(num "$req") | $lat | $batch | - | - | - | - | ≥ 30,000/s; p99 < 10 ms | $(holds "$req" ge 30000) / $(holds "$p99" lt 10) |"
  echo "| HTTP: of which durable redemptions/s | $c | $(num "$redeem") | (same) | | | $batch | $(ceiling "$c") | $(pg_cells "$c") | $(ratio "$redeem" "$pg") | ≥ 5x PostgreSQL | $(holds "$(ratio "$redeem" "$pg" | tr -d x)" ge 5) |"
}

table() {
  local rss_mib hwm_mib fs
  rss_mib="$(awk -v k="$(value_of "memory " rss_kib)" 'BEGIN { printf "%.1f", k / 1024 }')"
  hwm_mib="$(awk -v k="$(value_of "memory " hwm_kib)" 'BEGIN { printf "%.1f", k / 1024 }')"
  fs="$(value_of "fsync " per_s)"
  echo "| part | concurrency | buoni | p50 ms | p99 ms | p999 ms | mean batch | c × fsync/s | PostgreSQL/s | PostgreSQL p50 / p99 / p999 ms | buoni ÷ PostgreSQL | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
  echo "| disk: fdatasync'd small appends/s (one synced write's ceiling) | 1 | $(num "$fs") | $(ms "$(value_of "fsync " p50_ms)") | $(ms "$(value_of "fsync " p99_ms)") | $(ms "$(value_of "fsync " p999_ms)") | - | - | - | - | - | - | - |"
  engine_rows
  http_rows
  echo "| memory: \`buoni serve\` VmRSS after load (peak VmHWM), MiB, $(num "$(value_of "memory " cards)") cards | - | $rss_mib ($hwm_mib) | - | - | - | - | - | - | - | - | < 256 MiB, peak too | $(holds "$hwm_mib" lt 256) |"
  echo "| issuing: cards/s through \`buoni issue\` ($mem_programmes CSVs), took $(value_of "issue " seconds) s | - | $(num "$(value_of "issue " per_s)") | - | - | - | - | - | - | - | - | - | - |"
}

notes() {
  local idle idle_hwm store
  idle="$(awk -v k="$(value_of "memory " idle_rss_kib)" 'BEGIN { printf "%.1f", k / 1024 }')"
  idle_hwm="$(awk -v k="$(value_of "memory " idle_hwm_kib)" 'BEGIN { printf "%.1f", k / 1024 }')"
  store="$(awk -v k="$(value_of "store " kib)" 'BEGIN { printf "%.0f", k / 1024 }')"
  echo "- HTTP answers by status: $(grep '^STATUS http ' "$results" | cut -d' ' -f3-)" \
    "(201 redemption, 200 look-up; anything else is an error)."
  echo "- HTTP run: $http_connections kept-alive connections, closed loop, ${http_warmup_s} s warm-up" \
    "then ${http_s} s measured; one client thread; \`buoni serve\` defaults (2 I/O threads," \
    "64 handler threads), access log to /dev/null. Mean batch: the writer's, from /metrics."
  echo "- Memory: right after start (before load) VmRSS ${idle} MiB, VmHWM ${idle_hwm} MiB;" \
    "store on disk ${store} MiB;" \
    "load before reading it: $(grep '^RESULT memload ' "$results" | cut -d' ' -f3-4)."
  echo "- PostgreSQL 15: own cluster, fsync and synchronous_commit on, one plpgsql call per" \
    "redemption (bench/pg/), pgbench -M prepared -c N -j N, ${pg_s} s a step;" \
    "ledger rows after all steps: $(value_of "pgledger " rows); failed transactions:" \
    "$(grep '^RESULT pg c=' "$results" | sed 's/.*c=\([0-9]*\) .*failed=\([0-9]*\).*/c=\1: \2/' | paste -sd, -)."
  echo "- c × fsync/s: the ceiling of a writer that makes one synced write per batch when at" \
    "most c requests wait (a batch is never larger than the concurrency)."
  echo "- met: yes/no for each part of the target, in order."
  if [ "$mode" = smoke ]; then
    echo "- SMOKE RUN: steps of about a second; the figures show that the harness works, nothing else."
  fi
}

report() {
  echo "# buoni benchmark ($mode run of bench/run.sh)"
  echo
  local line
  for line in "${machine_lines[@]}"; do echo "- $line"; done
  local head dirty
  head="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  dirty="$(git -C "$repo" status --porcelain 2>/dev/null | wc -l)"
  echo "- code: commit $head, with $dirty uncommitted changed or new files in the working tree"
  echo "- run.sh took $(($(date +%s) - started_s)) s: ${build_s} s building/installing, then" \
    "$(($(date +%s) - measure_started_s)) s measuring"
  echo
  table
  echo
  notes
}

smoke_check() {
  local bad=0 prefix key v c
  local checks=("fsync |per_s" "http |req_per_s" "http |redeem_per_s" "issue |per_s"
    "memory |rss_kib" "memload |req_per_s")
  for c in ${engine_steps//,/ }; do checks+=("engine c=$c |per_s"); done
  for c in $pg_steps; do checks+=("pg c=$c |per_s"); done
  for key in "${checks[@]}"; do
    prefix="${key%%|*}"
    v="$(value_of "$prefix" "${key#*|}")"
    if [ "$(holds "${v:-0}" ge 0.000001)" != yes ]; then
      echo "bench_smoke: no positive ${key#*|} in a 'RESULT $prefix' line" >&2
      bad=1
    fi
  done
  [ "$bad" -eq 0 ] || exit 1
  echo "bench_smoke: every part printed its RESULT line with a positive figure"
}

main() {
  build
  ensure_postgres
  build_s=$(($(date +%s) - started_s))
  measure_started_s=$(date +%s)
  make_work_dir
  describe_machine
  part_fsync
  part_engine
  part_http
  [ -z "$pg_steps" ] || part_pg
  part_memory
  report >"$work/report.md"
  cat "$work/report.md"
  if [ "$mode" = full ]; then
    mkdir -p "$(dirname "$out_file")"
    cp "$work/report.md" "$out_file"
    log "written to $out_file"
  else
    smoke_check
  fi
}

main
