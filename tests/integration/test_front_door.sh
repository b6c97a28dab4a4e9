#!/bin/bash
# Integration: the daemon's front door (issue 12). TLS on --listen with the
# self-signed certificate from the state directory (curl --cacert, the
# fingerprint, a public-key pin) and with a configured certificate and key;
# plain HTTP refused on a TLS port and served only with --insecure-http;
# client certificates with --tls-client-ca; 1,100 connections that never
# finish their headers against a client from another address; a trickle of
# header bytes cut off at the deadline; the header size cap; browser Origins
# on the console WebSocket, the event stream and a state-changing POST; the
# token never in the log; vmctl over https.
# Usage: test_front_door.sh VMMD GUEST_DIR SLOW_CLIENT VMCTL
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
SLOW=$3
VMCTL=$4
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
fail_detail() { echo "(last: HTTP $status $(head -c 300 "$tmp/body" 2>/dev/null))"; }
for tool in openssl base64 sha256sum; do
    command -v $tool >/dev/null || { echo "SKIPPED: $tool is missing (scripts/setup.sh installs it)" >&2; exit 77; }
done

# tcurl ARGS... URL: curl over TCP -> $status, body in $tmp/body.
tcurl() { status=$(curl -s -o "$tmp/body" -w '%{http_code}' "$@"); }
stop_daemon() { kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=; }

# === the default: TLS with a self-signed pair made on first start ======================
start_daemon --listen "127.0.0.1:$PORT" --allowed-origin "https://dash.example" || exit 1
token=$(cat "$STATE/token")
auth=(-H "Authorization: Bearer $token")
CERT=$STATE/tls-cert.pem
URL=https://127.0.0.1:$PORT

check "a self-signed certificate and a key of mode 0600 in the state directory" \
    $([[ -s $CERT && $(stat -c %a "$STATE/tls-key.pem") == 600 ]]; echo $?)
tcurl --cacert "$CERT" "${auth[@]}" "$URL/v1/vms"
check "curl --cacert <state>/tls-cert.pem https://127.0.0.1 -> 200" $([[ $status == 200 ]]; echo $?)
tcurl --cacert "$CERT" "${auth[@]}" "https://localhost:$PORT/v1/host"
check "... and https://localhost (the certificate names both)" $([[ $status == 200 ]]; echo $?)
fp=$(sed '/-----/d' "$CERT" | base64 -d | sha256sum | awk '{print toupper($1)}' | sed 's/../&:/g; s/:$//')
check "GET /v1/host: tls.enabled and the certificate's SHA-256 fingerprint" \
    $([[ $(jbody .tls.enabled) == true && $(jbody .tls.fingerprint_sha256) == "$fp" ]]; echo $?)
check "... which the log shows too" $(grep -q "fingerprint $fp" "$tmp/vmmd.log"; echo $?)
pin=$(jbody .tls.public_key_pin)
tcurl -k --pinnedpubkey "$pin" "${auth[@]}" "$URL/v1/vms"
check "curl --pinnedpubkey with the pin GET /v1/host reports -> 200" $([[ $status == 200 ]]; echo $?)
tcurl "${auth[@]}" "$URL/v1/vms"
check "without --cacert curl refuses the self-signed certificate" $([[ $status == 000 ]]; echo $?)
tcurl -m 3 "${auth[@]}" "http://127.0.0.1:$PORT/v1/vms"
check "plain HTTP on the TLS port gets no HTTP answer" $([[ $status == 000 ]]; echo $?)
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CERT" "${auth[@]}" \
    -H "X-Big: $(head -c 65536 /dev/zero | tr '\0' a)" "$URL/v1/host")
check "64 KiB of headers over TLS -> 431" $([[ $status == 431 ]]; echo $?)

# --- vmctl over https --------------------------------------------------------------------
out=$("$VMCTL" --url "$URL" --token-file "$STATE/token" --cacert "$CERT" host 2>&1)
check "vmctl --cacert host: shows the fingerprint" $(grep -q "sha256: *$fp" <<<"$out"; echo $?)
VMMD_URL=$URL VMMD_TOKEN_FILE=$STATE/token VMMD_TLS_PIN=$pin "$VMCTL" list >/dev/null 2>&1
check "vmctl with VMMD_TLS_PIN" $?
"$VMCTL" --url "$URL" --token-file "$STATE/token" list >/dev/null 2>"$tmp/err"
check "vmctl without --cacert or --tls-pin: exit 3 with a hint" \
    $([[ $? == 3 ]] && grep -q -- "--cacert" "$tmp/err"; echo $?)
"$VMCTL" --url "$URL" --token-file "$STATE/token" --tls-pin "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" list >/dev/null 2>&1
check "vmctl with a wrong pin: exit 3" $([[ $? == 3 ]]; echo $?)

# --- Origins and state-changing requests ------------------------------------------------
ws=(--http1.1 -m 2 -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13"
    -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
tcurl --cacert "$CERT" "${ws[@]}" -H "Origin: https://evil.example" "$URL/v1/vms/none/console?token=$token"
check "console WebSocket from another site's Origin -> 403" \
    $([[ $status == 403 ]] && jbody .detail | grep -q "evil.example"; echo $?)
tcurl --cacert "$CERT" -m 2 -H "Origin: https://evil.example" "$URL/v1/events?token=$token"
check "event stream from another site's Origin -> 403" $([[ $status == 403 ]]; echo $?)
tcurl --cacert "$CERT" -m 1 -H "Origin: https://127.0.0.1:$PORT" "$URL/v1/events?token=$token&since=0"
check "event stream from the daemon's own Origin -> the stream" \
    $([[ $status == 200 ]] && grep -q "^event:" "$tmp/body"; echo $?)
tcurl --cacert "$CERT" -m 1 -H "Origin: https://dash.example" "$URL/v1/events?token=$token&since=0"
check "event stream from an --allowed-origin -> the stream" $([[ $status == 200 ]]; echo $?)
tcurl --cacert "$CERT" -m 1 -H "Origin: http://127.0.0.1:$PORT" "$URL/v1/events?token=$token&since=0"
check "http:// Origin on the TLS listener is another origin -> 403" $([[ $status == 403 ]]; echo $?)
tcurl --cacert "$CERT" -X POST -H "Origin: https://evil.example" -H "Content-Type: text/plain" \
    --data-binary "$(vm_json evil echo)" "$URL/v1/vms?token=$token"
check "cross-site POST (a form's: text/plain, ?token=) -> 403" $([[ $status == 403 ]]; echo $?)
tcurl --cacert "$CERT" -X POST -H "Content-Type: application/json" \
    --data-binary "$(vm_json evil echo)" "$URL/v1/vms?token=$token"
check "POST with ?token= but no Authorization header -> 401" $([[ $status == 401 ]]; echo $?)
tcurl --cacert "$CERT" -X DELETE "$URL/v1/vms/evil?token=$token"
check "DELETE with ?token= only -> 401" $([[ $status == 401 ]]; echo $?)
api GET /v1/vms
check "... and nothing was created" $([[ $(jbody length) == 0 ]]; echo $?)
status=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK" -H "Origin: https://evil.example" \
    -X POST -d "$(vm_json evil echo)" http://vmmd/v1/vms)
check "Unix socket: a foreign Origin is refused too (a proxy passes it on) -> 403" \
    $([[ $status == 403 ]]; echo $?)
status=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK" -H "Origin: http://vmmd" \
    http://vmmd/v1/host)
check "Unix socket: its own Origin -> 200" $([[ $status == 200 ]]; echo $?)

if [[ -c /dev/kvm && -w /dev/kvm ]]; then
    api POST /v1/vms "$(vm_json web echo)"
    api POST /v1/vms/web/start
    wait_state web running
    tcurl --cacert "$CERT" "${ws[@]}" -H "Origin: https://127.0.0.1:$PORT" "$URL/v1/vms/web/console?token=$token"
    check "console WebSocket from the daemon's own Origin over TLS -> 101" $([[ $status == 101 ]]; echo $?)
    tcurl --cacert "$CERT" "${ws[@]}" -H "Origin: https://evil.example" "$URL/v1/vms/web/console?token=$token"
    check "... and from another site's -> 403" $([[ $status == 403 ]]; echo $?)
    api POST /v1/vms/web/stop
else
    echo "SKIPPED (no /dev/kvm): the same-origin console WebSocket to a running VM"
fi

# --- 1,100 connections that never finish their headers ----------------------------------
"$SLOW" hold tls 127.0.0.1 "$PORT" 127.0.0.1 1100 >"$tmp/hold" &
hold_pid=$!
for _ in $(seq 50); do
    open=$(tail -n 1 "$tmp/hold" | awk '{print $2}')
    [[ -n $open && $open -le 64 ]] && break
    sleep 0.1
done
t=$(curl -s -o "$tmp/body" -w '%{http_code} %{time_total}' --interface 127.0.0.2 --cacert "$CERT" \
    "${auth[@]}" -m 10 "$URL/v1/vms")
open=$(tail -n 1 "$tmp/hold" | awk '{print $2}')
echo "1,100 connections from 127.0.0.1 (still open: $open); GET /v1/vms from 127.0.0.2: $t"
check "127.0.0.1 holds at most 64 of them (--max-connections-per-ip)" \
    $([[ -n $open && $open -gt 0 && $open -le 64 ]]; echo $?)
read -r code secs <<<"$t"
check "meanwhile GET /v1/vms from 127.0.0.2 over TLS answers within a second" \
    $([[ $code == 200 ]] && awk -v s="$secs" 'BEGIN {exit !(s < 1)}'; echo $?)
cpu0=$(awk '{print $14 + $15}' "/proc/$daemon_pid/stat")
sleep 2
cpu1=$(awk '{print $14 + $15}' "/proc/$daemon_pid/stat")
echo "daemon CPU over 2 s with those connections open: $((cpu1 - cpu0)) ticks of $(getconf CLK_TCK)/s"
check "the held connections cost the daemon less than half a CPU" \
    $((cpu1 - cpu0 < $(getconf CLK_TCK) ? 0 : 1))
for _ in $(seq 150); do
    [[ $(tail -n 1 "$tmp/hold" | awk '{print $2}') == 0 ]] && break
    sleep 0.1
done
check "all of them are closed by the 10 s header deadline" \
    $([[ $(tail -n 1 "$tmp/hold" | awk '{print $2}') == 0 ]]; echo $?)
kill "$hold_pid"
wait "$hold_pid" 2>/dev/null
metric=$(curl -s --cacert "$CERT" "${auth[@]}" "$URL/metrics" |
    awk '$1 == "vmmd_http_header_timeouts_total" {print $2}')
check "/metrics counts them: vmmd_http_header_timeouts_total $metric" \
    $([[ ${metric:-0} -ge 64 ]]; echo $?)

# A ClientHello trickled a byte a second: MHD sees activity, the deadline does not care.
out=$("$SLOW" trickle tls 127.0.0.1 "$PORT" 127.0.0.3 1)
echo "TLS trickle: $out"
secs=$(awk '{print $3}' <<<"$out")
check "a handshake trickled a byte a second is cut off at the 10 s deadline" \
    $([[ $out == closed* ]] && awk -v s="$secs" 'BEGIN {exit !(s >= 9 && s < 13)}'; echo $?)

# --- the token is never logged ------------------------------------------------------------
tcurl --cacert "$CERT" -H "Authorization: Bearer wrong-$token" "$URL/v1/vms"
tcurl --cacert "$CERT" -m 1 "$URL/v1/events?token=wrong-$token"
tcurl --cacert "$CERT" -m 1 "$URL/v1/events?token=$token"
check "neither the token nor a wrong one appears in the debug log ($(wc -l <"$tmp/vmmd.log") lines)" \
    $(! grep -qF -e "$token" "$tmp/vmmd.log" "$tmp/vmmd.err"; echo $?)
stop_daemon

# === a configured certificate and key, and client certificates ================================
pki=$tmp/pki
mkdir -p "$pki"
(
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=vmmd test CA" -keyout ca.key -out ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=vmmd.test" \
        -keyout server.key -out server.csr
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile <(printf 'subjectAltName=DNS:vmmd.test,IP:127.0.0.1\n') -out server.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=operator" \
        -keyout client.key -out client.csr
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -out client.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=stranger" -keyout stranger.key -out stranger.pem
) >"$tmp/openssl.log" 2>&1
check "openssl made a CA, a server and two client certificates" \
    $([[ -s $pki/server.pem && -s $pki/client.pem ]]; echo $?)
STATE=$tmp/state2 SOCK=$tmp/state2/vmmd.sock
start_daemon --listen "127.0.0.1:$PORT" --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" \
    --tls-client-ca "$pki/ca.pem" || exit 1
token=$(cat "$STATE/token")
auth=(-H "Authorization: Bearer $token")
check "no self-signed pair is made when --tls-cert is given" $([[ ! -e $STATE/tls-cert.pem ]]; echo $?)
mtls=(--cacert "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key")
tcurl "${mtls[@]}" "${auth[@]}" --resolve "vmmd.test:$PORT:127.0.0.1" "https://vmmd.test:$PORT/v1/host"
check "--tls-cert/--tls-key: verified by its CA under its own name, with a client certificate -> 200" \
    $([[ $status == 200 && $(jbody .tls.client_certificates) == true ]]; echo $?)
tcurl --cacert "$pki/ca.pem" "${auth[@]}" "https://127.0.0.1:$PORT/v1/host"
check "the token without a client certificate -> 403" $([[ $status == 403 ]]; echo $?)
tcurl --cacert "$pki/ca.pem" --cert "$pki/stranger.pem" --key "$pki/stranger.key" "${auth[@]}" \
    "https://127.0.0.1:$PORT/v1/host"
check "a client certificate the CA did not sign -> 403 (or no TLS session)" \
    $([[ $status == 403 || $status == 000 ]]; echo $?)
tcurl "${mtls[@]}" "https://127.0.0.1:$PORT/v1/host"
check "a client certificate does not stand in for the token -> 401" $([[ $status == 401 ]]; echo $?)
stop_daemon

# === --insecure-http ==========================================================================
STATE=$tmp/state3 SOCK=$tmp/state3/vmmd.sock
start_daemon --listen "127.0.0.1:$PORT" --insecure-http --header-timeout 3 || exit 1
token=$(cat "$STATE/token")
tcurl -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/v1/host"
check "--insecure-http: plain HTTP -> 200, tls.enabled false" \
    $([[ $status == 200 && $(jbody .tls.enabled) == false ]]; echo $?)
check "... no certificate is made, and the log warns" \
    $([[ ! -e $STATE/tls-cert.pem ]] && grep -q "insecure-http" "$tmp/vmmd.log"; echo $?)
tcurl -H "Origin: http://127.0.0.1:$PORT" "http://127.0.0.1:$PORT/v1/events?token=$token" -m 1
check "its own Origin is http:// there" $([[ $status == 200 ]]; echo $?)
out=$("$SLOW" trickle http 127.0.0.1 "$PORT" 127.0.0.3 1)
echo "HTTP header trickle: $out"
secs=$(awk '{print $3}' <<<"$out")
check "headers trickled a byte a second are cut off at --header-timeout 3" \
    $([[ $out == closed* ]] && awk -v s="$secs" 'BEGIN {exit !(s >= 2.5 && s < 5)}'; echo $?)
stop_daemon
"$VMMD" serve --state-dir "$tmp/state4" --listen "127.0.0.1:$PORT" --insecure-http \
    --tls-client-ca "$pki/ca.pem" >/dev/null 2>"$tmp/err"
check "--insecure-http with --tls-client-ca is a usage error" \
    $([[ $? == 2 ]] && grep -q "insecure-http" "$tmp/err"; echo $?)

finish
