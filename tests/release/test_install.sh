#!/bin/bash
# What an operator installs: a Release build with the packaging prefix
# (/usr), `cmake --install` into a DESTDIR, and `cpack -G DEB`. Checks the
# installed tree (binaries, dashboard, man pages, completion, the systemd
# unit, the config file that names every option), runs the installed daemon
# as systemd would (Type=notify: READY=1 on $NOTIFY_SOCKET once the API
# answers; journal-style log lines when stderr is the journal) and lists the
# .deb's contents and its generated dependencies.
# Usage: test_install.sh SOURCE_DIR BUILD_DIR NOTIFY_LISTEN
set -uo pipefail

SRC=$1
BUILD=$2
NOTIFY_LISTEN=$3
tmp=$(mktemp -d)
DEST=$tmp/dest
pass=0 fail=0 pid=

cleanup() {
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
check() {
    if [[ $2 -eq 0 ]]; then echo "PASS $1"; pass=$((pass + 1))
    else echo "FAIL $1"; fail=$((fail + 1)); fi
}

cmake -S "$SRC" -B "$BUILD" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release \
    -DVMMD_TESTS=OFF -DVMMD_WERROR=ON >/dev/null &&
    cmake --build "$BUILD" -j"$(nproc)" >"$tmp/build.log" 2>&1
check "Release build with prefix /usr, no warnings" $?
DESTDIR=$DEST cmake --install "$BUILD" >/dev/null
check "cmake --install into a DESTDIR" $?

# --- the installed tree ----------------------------------------------------------
expected=(usr/bin/vmmd usr/bin/vmmd-daemon usr/bin/vmctl
          usr/share/vmmd/dashboard/index.html usr/share/vmmd/dashboard/xterm.mjs
          usr/share/man/man8/vmmd.8 usr/share/man/man1/vmctl.1
          usr/share/bash-completion/completions/vmctl usr/share/bash-completion/completions/vmmd
          usr/lib/systemd/system/vmmd.service etc/vmmd/vmmd.conf)
missing=0
for f in "${expected[@]}"; do
    [[ -e $DEST/$f ]] || { echo "  missing: /$f"; missing=1; }
done
check "the tree has binaries, dashboard, man pages, completions, unit and config" $missing
unexpected=$(cd "$DEST" && find . -type f | sed 's|^\./||' | grep -v -e '^usr/share/vmmd/dashboard/' |
             grep -vxF -f <(printf '%s\n' "${expected[@]}"))
check "and nothing else (no test guests, libraries or headers)" $([[ -z $unexpected ]] || echo "  extra: $unexpected"; [[ -z $unexpected ]]; echo $?)

unit=$DEST/usr/lib/systemd/system/vmmd.service
for line in Type=notify KillMode=process Restart=on-failure StateDirectory=vmmd \
            "ExecStart=/usr/bin/vmmd serve --config-file /etc/vmmd/vmmd.conf --state-dir /var/lib/vmmd" \
            "WantedBy=multi-user.target"; do
    grep -qxF "$line" "$unit"
    check "vmmd.service: $line" $?
done

# Every option of `vmmd serve` is in the config file, commented, with a value.
options=$("$DEST/usr/bin/vmmd" serve --help | sed -n 's/^  --\([a-z-]*\).*/\1/p' | grep -vx -e config-file -e help)
nopt=0 undocumented=
for o in $options; do
    nopt=$((nopt + 1))
    grep -qE "^# $o = ." "$DEST/etc/vmmd/vmmd.conf" || undocumented+=" $o"
done
check "vmmd.conf has all $nopt options commented (missing:${undocumented:- none})" $([[ -z $undocumented && $nopt -ge 10 ]]; echo $?)
uncommented=$(grep -vE '^(#|$)' "$DEST/etc/vmmd/vmmd.conf")
check "vmmd.conf sets nothing by default" $([[ -z $uncommented ]]; echo $?)
# The same file with every option set parses (flags win, so the paths stay ours, and no
# network is made on the host: managed networks outlive the daemon by design). The
# examples of directories the operator adds (a storage pool, an import directory) are
# not this machine's: left out, as listen and log-file are; so are the cluster options,
# whose example etcd is not here either (tests/integration starts one for the cluster test).
sed -E 's/^# ([a-z-]+ = )/\1/' "$DEST/etc/vmmd/vmmd.conf" |
    grep -v -e '^listen' -e '^log-file' -e '^storage-pool' -e '^import-dir' \
        -e '^cluster-' -e '^advertise' >"$tmp/all.conf"

# --- the installed daemon, as systemd runs it --------------------------------------
mkdir -p "$tmp/state"
"$NOTIFY_LISTEN" "$tmp/notify" 30 >"$tmp/notify.out" &
listener=$!
for _ in $(seq 50); do [[ -S $tmp/notify ]] && break; sleep 0.02; done
: >"$tmp/journal"
NOTIFY_SOCKET=$tmp/notify JOURNAL_STREAM=$(stat -c '%d:%i' "$tmp/journal") \
    "$DEST/usr/bin/vmmd" serve --config-file "$tmp/all.conf" --state-dir "$tmp/state" \
    --socket "$tmp/state/vmmd.sock" --token-file "$tmp/state/token" --image-dir "$tmp/state" \
    --log-level info --dashboard-dir "$DEST/usr/share/vmmd/dashboard" \
    --default-network none --network-prefix "r$((RANDOM % 10000))" \
    2>>"$tmp/journal" &
pid=$!
wait "$listener"
ready=$?
check "Type=notify: READY=1 arrives on \$NOTIFY_SOCKET" $ready
check "and only once the API answers" \
    $(curl -sf --unix-socket "$tmp/state/vmmd.sock" http://vmmd/v1/host >/dev/null; echo $?)
check "journal lines carry a priority, not a timestamp" \
    $(grep -q '^<6>info: vmmd .* serving on ' "$tmp/journal" && ! grep -qE '^[0-9]{4}-' "$tmp/journal"; echo $?)
kill -TERM "$pid"
wait "$pid"
check "SIGTERM: the installed daemon exits 0" $?
pid=
[[ $fail -eq 0 ]] || { echo "daemon output:"; cat "$tmp/journal"; }

# --- the .deb -------------------------------------------------------------------------
(cd "$BUILD" && cpack -G DEB >"$tmp/cpack.log" 2>&1)
deb=$(ls "$BUILD"/vmmd_*_amd64.deb 2>/dev/null | head -n 1)
check "cpack -G DEB builds a package" $([[ -f $deb ]]; echo $?)
if [[ -f $deb ]]; then
    dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||' >"$tmp/deb.list"
    missing=0
    for f in "${expected[@]}"; do grep -qxF "$f" "$tmp/deb.list" || { echo "  not in .deb: $f"; missing=1; }; done
    check ".deb holds the installed tree" $missing
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "  Depends: $depends"
    for lib in libc6 libjansson4 libuv1 libmicrohttpd12 libsqlite3-0 libcurl4; do
        [[ $depends == *"$lib "* || $depends == *"$lib," || $depends == *"$lib" ]]
        check ".deb depends on $lib (from the binaries' shared libraries)" $?
    done
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$tmp/conffiles" 2>/dev/null
    check ".deb marks /etc/vmmd/vmmd.conf as a conffile" $(grep -qxF /etc/vmmd/vmmd.conf "$tmp/conffiles"; echo $?)
else
    cat "$tmp/cpack.log"
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
