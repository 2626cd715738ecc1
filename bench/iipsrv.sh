#!/usr/bin/env bash
# Starts or stops iipsrv (Debian iipimage-server) as 2 FastCGI workers behind lighttpd on
# 127.0.0.1:$IIPSRV_PORT (default 9010), JPEG quality $JPEG_QUALITY (default 85).
#
# usage: bench/iipsrv.sh start|stop|pids
set -euo pipefail
port="${IIPSRV_PORT:-9010}"
dir="${TMPDIR:-/tmp}/gigatile-bench-iipsrv"
case "${1:-}" in
start)
    mkdir -p "$dir/www"
    cat >"$dir/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.document-root = "$dir/www"
server.bind = "127.0.0.1"
server.port = $port
server.pid-file = "$dir/lighttpd.pid"
server.errorlog = "$dir/error.log"
server.max-keep-alive-requests = 100000
fastcgi.server = ( "/fcgi-bin/iipsrv.fcgi" => ((
    "socket" => "$dir/iipsrv.sock",
    "bin-path" => "/usr/lib/iipimage-server/iipsrv.fcgi",
    "max-procs" => 2,
    "check-local" => "disable",
    "bin-environment" => ( "JPEG_QUALITY" => "${JPEG_QUALITY:-85}", "VERBOSITY" => "0",
                           "MAX_IMAGE_CACHE_SIZE" => "64" )
)) )
CONF
    ${IIPSRV_TASKSET:-} lighttpd -f "$dir/lighttpd.conf"
    for _ in $(seq 50); do
        # Any HTTP answer will do (iipsrv answers a bare request with 400).
        code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/fcgi-bin/iipsrv.fcgi" || true)
        [ "$code" != "000" ] && exit 0
        sleep 0.1
    done
    echo "iipsrv did not start; see $dir/error.log" >&2
    exit 1
    ;;
stop)
    # SIGTERM to our lighttpd only: it stops the iipsrv workers it spawned itself.
    if [ -f "$dir/lighttpd.pid" ]; then
        pid=$(cat "$dir/lighttpd.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$dir/lighttpd.pid"
    fi
    ;;
pids)
    # The iipsrv workers of our lighttpd.
    [ -f "$dir/lighttpd.pid" ] && pgrep -P "$(cat "$dir/lighttpd.pid")" || true
    ;;
*)
    echo "usage: $0 start|stop|pids" >&2
    exit 2
    ;;
esac
