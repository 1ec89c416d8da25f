# Shared by the SDK checks: wait for a sandbox started in the background to print its
# address, and stop it checking that SIGTERM ends it cleanly. Source this file.

# wait_listening PID OUT ERR: prints the URL from the sandbox's first stdout line
# (`listening on URL`), or the sandbox's stderr and exits 1 if it never comes.
wait_listening() {
    local pid=$1 out=$2 err=$3 url=""
    for _ in $(seq 1 100); do
        url=$(sed -n 's/^listening on //p' "$out")
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$url" ]; then
        echo "the sandbox did not start:" >&2
        cat "$err" >&2
        exit 1
    fi
    echo "$url"
}

# stop_cleanly PID ERR NAME: SIGTERM must stop the sandbox with exit status 0.
stop_cleanly() {
    local pid=$1 err=$2 name=$3 status=0
    kill -TERM "$pid"
    wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "$name exited $status on SIGTERM:" >&2
        cat "$err" >&2
        exit 1
    fi
    echo "$name stopped cleanly on SIGTERM"
}
