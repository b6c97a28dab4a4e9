#!/bin/bash
# Integration: the daemon serving the web dashboard and the API rules a
# browser needs. Static files with their Content-Type, ETag revalidation and
# headers; no way out of the dashboard directory (.., encoded %2e%2e and %2f,
# dot files, a symlink, unknown extensions); on TCP the files need no token,
# the API needs the Authorization header, and only the event stream and the
# console WebSocket also take ?token= (a wrong one is 401). Also the list's
# Vmmd-Last-Event-Id and the lifecycle table in GET /v1/host.
# Usage: test_dashboard.sh VMMD GUEST_DIR DASHBOARD_WWW
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
WWW=$3
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
fail_detail() { echo "(last: HTTP $code $(head -c 300 "$tmp/body" 2>/dev/null))"; }

# A copy of the dashboard with things that must never be served next to it.
cp -r "$WWW" "$tmp/www"
ln -s /etc/passwd "$tmp/www/passwd.js"
echo "secret" >"$tmp/www/.hidden.js"
echo "backup" >"$tmp/www/notes.bak"
# Plain HTTP: the test talks raw HTTP over /dev/tcp (TLS is test_front_door.sh's).
start_daemon --listen "127.0.0.1:$PORT" --insecure-http --dashboard-dir "$tmp/www" || exit 1
token=$(cat "$STATE/token")
URL=http://127.0.0.1:$PORT

# get PATH [curl args...] -> $code, body in $tmp/body, headers in $tmp/headers
get() {
    local path=$1
    shift
    rm -f "$tmp/body" # curl leaves the old file where an answer has no body
    code=$(curl -s --path-as-is -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@" "$URL$path")
}
header() { tr -d '\r' <"$tmp/headers" | awk -F': ' -v h="${1,,}" 'tolower($1)==h{print $2}'; }
authed=(-H "Authorization: Bearer $token")

# --- static files ------------------------------------------------------------------
get /
check "GET / without a token: the dashboard's index.html" \
    $([[ $code == 200 && $(header content-type) == "text/html; charset=utf-8" ]] &&
      grep -q 'src="/assets/app.js"' "$tmp/body"; echo $?)
check "index: no-cache, nosniff, a CSP that keeps scripts to the daemon" \
    $([[ $(header cache-control) == no-cache && $(header x-content-type-options) == nosniff ]] &&
      header content-security-policy | grep -q "default-src 'self'"; echo $?)
etag=$(header etag)
get / -H "If-None-Match: $etag"
check "revalidation with the ETag -> 304, no body" $([[ -n $etag && $code == 304 && ! -s $tmp/body ]]; echo $?)
get / -H 'If-None-Match: "something-else"'
check "another ETag -> 200" $([[ $code == 200 ]]; echo $?)

for f in app.js:text/javascript style.css:text/css xterm.mjs:text/javascript xterm.css:text/css; do
    get "/assets/${f%%:*}"
    check "/assets/${f%%:*} is ${f#*:}" \
        $([[ $code == 200 && $(header content-type) == "${f#*:}; charset=utf-8" ]] &&
          cmp -s "$tmp/body" "$WWW/${f%%:*}"; echo $?)
done
get /assets/xterm.mjs
check "the terminal widget is vendored, not fetched ($(stat -c %s "$tmp/body") bytes)" \
    $([[ $(stat -c %s "$tmp/body") -gt 100000 ]] && grep -q "export{" "$tmp/body"; echo $?)
get /assets/missing.js
check "a missing file -> 404 problem+json" \
    $([[ $code == 404 && $(header content-type) == application/problem+json ]] &&
      [[ $(jq -r .status "$tmp/body") == 404 ]]; echo $?)

# --- no way out of the directory ------------------------------------------------------
leak() { grep -q "root:" "$tmp/body" || grep -q secret "$tmp/body" || grep -q backup "$tmp/body"; }
for path in "/../etc/passwd" "/assets/../../etc/passwd" "/assets/%2e%2e" "/assets/%2e%2e%2fvmmd.db" \
            "/assets/..%2f..%2fetc%2fpasswd" "/assets/%2e%2e/%2e%2e/etc/passwd" "/assets/.hidden.js" \
            "/assets/passwd.js" "/assets/notes.bak" "/assets//etc/passwd"; do
    get "$path" "${authed[@]}"
    check "$path -> 404, nothing leaks" $([[ $code == 404 ]] && ! leak; echo $?)
done
get "/assets/app.js%00.html"
check "an encoded NUL does not cut the name short -> 400" $([[ $code == 400 ]] && ! grep -q "entry point" "$tmp/body"; echo $?)
get "/assets/passwd.js"
check "a symlink to /etc/passwd is not followed, without a token either" $([[ $code == 404 ]] && ! leak; echo $?)
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$URL/")
check "POST / without the token -> 401 (a method that changes state needs it on TCP)" \
    $([[ $code == 401 ]]; echo $?)
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$STATE/token")" "$URL/")
check "POST / with the token -> 405" $([[ $code == 405 ]]; echo $?)

# --- the token on TCP ---------------------------------------------------------------
get /v1/vms
check "API without a token -> 401 with WWW-Authenticate" \
    $([[ $code == 401 && $(header www-authenticate) == Bearer* ]]; echo $?)
get "/v1/vms?token=$token"
check "?token= is not accepted for the API (only streams take it) -> 401" $([[ $code == 401 ]]; echo $?)
get "/metrics?token=$token"
check "... nor for /metrics -> 401" $([[ $code == 401 ]]; echo $?)
get /no/such/route
check "an unknown route without a token -> 401 (routes are not enumerable)" $([[ $code == 401 ]]; echo $?)
get /no/such/route "${authed[@]}"
check "... with the token -> 404" $([[ $code == 404 ]]; echo $?)
get "/v1/events?token=$token&since=0" -N --max-time 1
check "event stream with ?token= -> the stream" \
    $(grep -q "event: daemon.started" "$tmp/body" && [[ $(header content-type) == text/event-stream ]]; echo $?)
get "/v1/events?token=wrong$token" -N --max-time 1
check "event stream with a wrong ?token= -> 401" $([[ $code == 401 ]] && ! grep -q "event:" "$tmp/body"; echo $?)
get "/v1/events?token=" -N --max-time 1
check "event stream with an empty ?token= -> 401" $([[ $code == 401 ]]; echo $?)

# Connections that end inside their headers, twice: not requests, nothing counted, no crash.
for _ in 1 2; do
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET /v1/vms HTTP/1.1\r\nHost: x\r\n' >&3
    sleep 0.2
    exec 3>&-
done
get /metrics "${authed[@]}"
check "half-sent requests are not counted and do no harm" \
    $([[ $code == 200 ]] && ! grep -q 'method="(null)"' "$tmp/body" && kill -0 "$daemon_pid"; echo $?)

# --- what the dashboard builds on ------------------------------------------------------
get /v1/host "${authed[@]}"
check "GET /v1/host has the lifecycle table" \
    $([[ $(jq -c '.lifecycle.stopped' "$tmp/body") == '["start","delete","edit"]' &&
         $(jq -c '.lifecycle.running | index("pause") != null' "$tmp/body") == true ]]; echo $?)
curl -s --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"pos\",\"kernel\":\"$GUESTS/guest-echo.elf\",\"memory_mib\":32}" http://x/v1/vms >/dev/null
get /v1/vms "${authed[@]}"
pos=$(header vmmd-last-event-id)
last=$(curl -s -N --max-time 1 --unix-socket "$SOCK" "http://x/v1/events?since=0" | awk '/^id:/{id=$2} END{print id}')
check "GET /v1/vms says which event it reflects (Vmmd-Last-Event-Id $pos = newest $last)" \
    $([[ -n $pos && $pos == "$last" ]]; echo $?)
code=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK" http://x/)
check "over the Unix socket the dashboard needs no token either" $([[ $code == 200 ]]; echo $?)

# The console WebSocket over TCP, as a browser opens it: the token in the query.
if [[ -c /dev/kvm && -w /dev/kvm ]]; then
    curl -s --unix-socket "$SOCK" -X POST http://x/v1/vms/pos/start >/dev/null
    ws() {
        curl -s -i --http1.1 --max-time 1 -H "Connection: Upgrade" -H "Upgrade: websocket" \
            -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
            "$URL/v1/vms/pos/console$1" 2>/dev/null | head -1 | tr -d '\r'
    }
    check "console WebSocket with ?token= -> 101" $([[ $(ws "?token=$token") == *" 101 "* ]]; echo $?)
    check "console WebSocket with a wrong ?token= -> 401" $([[ $(ws "?token=x$token") == *" 401 "* ]]; echo $?)
    check "console WebSocket without a token -> 401" $([[ $(ws "") == *" 401 "* ]]; echo $?)
else
    echo "SKIPPED (loudly): /dev/kvm is not available; the console WebSocket checks did not run" >&2
fi

finish
