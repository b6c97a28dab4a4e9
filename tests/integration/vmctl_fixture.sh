# Sourced after daemon_fixture.sh by the tests that drive vmctl ($VMCTL): vmctl talks to
# this test's daemon only, without colour. v ARGS... runs it: its exit code in $rc, stdout
# in $tmp/out, stderr in $tmp/err (both shown in FAIL lines); jout FILTER reads its JSON.

export VMMD_SOCKET=$SOCK
unset VMMD_URL VMMD_TOKEN_FILE
export NO_COLOR=1
fail_detail() {
    echo "(rc $rc; stdout: $(head -c 400 "$tmp/out" 2>/dev/null); stderr: $(head -c 400 "$tmp/err" 2>/dev/null))"
}

# v ARGS... -> $rc, stdout in $tmp/out, stderr in $tmp/err
v() {
    "$VMCTL" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
jout() { jq -r "$1" "$tmp/out" 2>/dev/null; }
