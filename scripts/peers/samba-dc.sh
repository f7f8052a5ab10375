#!/usr/bin/env bash
# A disposable Samba AD domain controller on the loopback interface, as a real DCE/RPC server for
# the peer tests (crates/dsbackup-transport/tests/peers.rs) and for trying things by hand.
#
#   scripts/peers/samba-dc.sh start DIR   provision a fresh domain into DIR, start Samba, and return
#                                         once its endpoint mapper answers a bind on 127.0.0.1:135
#   scripts/peers/samba-dc.sh stop DIR    stop the Samba started in DIR and wait until it is gone
#
# Domain TEST, realm TEST.LOCAL, user Administrator with password Passw0rd!123 (override with
# SAMBA_DC_PASSWORD). Everything Samba writes stays under DIR; it listens on lo only (127.0.0.1 and
# ::1). Needs root and the Debian packages samba, samba-ad-dc and samba-ad-provision. Port 135 must
# be free: one such DC per machine at a time.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(realpath -m "$2")
password=${SAMBA_DC_PASSWORD:-Passw0rd!123}
wait_secs=${SAMBA_DC_WAIT_SECS:-60}

# A bind to the endpoint mapper (e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0, NDR 2.0 transfer
# syntax), little-endian, call_id 1, 72 bytes: common header, max_xmit/max_recv 5840,
# assoc_group 0, one presentation context (id 0).
EPM_BIND='\x05\x00\x0b\x03\x10\x00\x00\x00\x48\x00\x00\x00\x01\x00\x00\x00'\
'\xd0\x16\xd0\x16\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00'\
'\x08\x83\xaf\xe1\x1f\x5d\xc9\x11\x91\xa4\x08\x00\x2b\x14\xa0\xfa\x03\x00\x00\x00'\
'\x04\x5d\x88\x8a\xeb\x1c\xc9\x11\x9f\xe8\x08\x00\x2b\x10\x48\x60\x02\x00\x00\x00'

# Whether something on 127.0.0.1:135 answers our bind with a bind_ack (PTYPE 12). The port opens
# a second or two before the endpoint mapper is ready to answer, so the port alone is not enough.
epm_answers() {
  local reply
  reply=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/135 || exit 1
    printf "$1" >&3
    head -c 3 <&3 | od -An -tx1' _ "$EPM_BIND" 2>/dev/null | tr -d ' \n') || return 1
  [ "$reply" = 05000c ]
}

samba_pid() { cat "$dir/samba.pid" 2>/dev/null; }

start() {
  # A DC left running in DIR by an interrupted run: stop it first.
  if [ -f "$dir/samba.pid" ]; then stop; fi
  if epm_answers; then
    echo "something already answers on 127.0.0.1:135; stop it first" >&2
    exit 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir/log" "$dir/run" "$dir/cache"
  local t0=$SECONDS
  # No DNS server, no printing; sockets, pid files and logs relocated under DIR so that nothing
  # touches the machine's own Samba configuration.
  if ! samba-tool domain provision --targetdir="$dir" --use-rfc2307 --server-role=dc \
      --dns-backend=NONE --realm=TEST.LOCAL --domain=TEST --host-name=dc1 \
      --adminpass="$password" \
      --option='interfaces=lo' --option='bind interfaces only=yes' \
      --option="log file=$dir/log/log.%m" --option="pid directory=$dir/run" \
      --option="ncalrpc dir=$dir/run/ncalrpc" \
      --option="winbindd socket directory=$dir/run/winbindd" \
      --option="ntp signd socket directory=$dir/run/ntp_signd" \
      --option='load printers=no' --option='printcap name=/dev/null' \
      --option='disable spoolss=yes' \
      --option='server services=s3fs, rpc, nbt, wrepl, ldap, cldap, kdc, drepl, winbindd, kcc' \
      >"$dir/log/provision.log" 2>&1; then
    tail -n 20 "$dir/log/provision.log" >&2
    echo "samba-tool domain provision failed (log: $dir/log/provision.log)" >&2
    exit 1
  fi
  echo "provisioned in $((SECONDS - t0)) s"
  # Its own session and process group (setsid), so that `stop` can signal every process it forks.
  setsid samba --interactive --model=single --configfile="$dir/etc/smb.conf" \
    >"$dir/log/samba.out" 2>&1 </dev/null &
  echo $! >"$dir/samba.pid"
  local deadline=$((SECONDS + wait_secs))
  until epm_answers; do
    if ! kill -0 "$(samba_pid)" 2>/dev/null; then
      tail -n 20 "$dir/log/samba.out" >&2
      echo "samba exited before its endpoint mapper answered (log: $dir/log/)" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "the endpoint mapper did not answer within $wait_secs s (log: $dir/log/)" >&2
      stop
      exit 1
    fi
    sleep 0.2
  done
  echo "samba $(samba_pid) answers on 127.0.0.1:135 after $((SECONDS - t0)) s"
}

stop() {
  local pid
  pid=$(samba_pid) || { echo "no $dir/samba.pid: nothing to stop"; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    pgrep -g "$pid" >/dev/null || break
    sleep 0.1
  done
  if pgrep -g "$pid" >/dev/null; then
    echo "samba $pid still running after 10 s: killing its process group" >&2
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$dir/samba.pid"
  echo "samba $pid stopped"
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
