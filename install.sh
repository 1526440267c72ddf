#!/usr/bin/env bash
# Install mlsec-monitor: build the release binary, install it, create the data
# directory (0700), write a commented default config (0640), and install a
# hardened systemd unit when systemd is present (enabled only with --enable).
# Safe to run again.
#
#   ./install.sh [--prefix DIR] [--enable] [--no-build] [--binary PATH]
#   ./install.sh --uninstall [--purge] [--prefix DIR]
#
# Defaults: as root, binary in /usr/local/bin, config /etc/mlsec-monitor,
# data /var/lib/mlsec-monitor, unit /etc/systemd/system, and the daemon runs
# as the system user mlsec-monitor (created). As a user, binary in
# ~/.local/bin, config ~/.config/mlsec-monitor, data ~/.local/share/mlsec-monitor,
# unit ~/.config/systemd/user. With --prefix DIR everything lives under DIR
# (DIR/bin, DIR/etc/mlsec-monitor, DIR/var/lib/mlsec-monitor, and the unit in
# DIR/lib/systemd/system for a package to ship). --binary installs PATH
# instead of building.
set -euo pipefail

prefix="" enable=0 uninstall=0 purge=0 build=1 given=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --enable) enable=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --no-build) build=0; shift ;;
    --binary) given="${2:?--binary needs a path}"; build=0; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

root=0; [ "$(id -u)" -eq 0 ] && root=1
if [ -n "$prefix" ]; then
  mkdir -p "$prefix"; prefix="$(cd "$prefix" && pwd)"
  bindir="$prefix/bin"; confdir="$prefix/etc/mlsec-monitor"; datadir="$prefix/var/lib/mlsec-monitor"
elif [ $root -eq 1 ]; then
  bindir=/usr/local/bin; confdir=/etc/mlsec-monitor; datadir=/var/lib/mlsec-monitor
else
  bindir="$HOME/.local/bin"; confdir="$HOME/.config/mlsec-monitor"; datadir="$HOME/.local/share/mlsec-monitor"
fi
if [ $root -eq 1 ]; then unitdir=/etc/systemd/system; sysctl=(systemctl)
else unitdir="$HOME/.config/systemd/user"; sysctl=(systemctl --user); fi
have_systemd=0; [ -d /run/systemd/system ] && command -v systemctl >/dev/null && have_systemd=1
# A staged install (--prefix) writes the unit beside everything else and
# touches neither systemd nor the system's users.
staged=0; [ -n "$prefix" ] && { staged=1; unitdir="$prefix/lib/systemd/system"; have_systemd=0; }
conf="$confdir/config.toml"
unit="$unitdir/mlsec-monitor.service"
# The system unit runs as its own user; a user unit runs as the user.
system_unit=0; { [ $root -eq 1 ] || [ $staged -eq 1 ]; } && system_unit=1
user=mlsec-monitor

say() { printf '  %s\n' "$*"; }

if [ $uninstall -eq 1 ]; then
  echo "Uninstalling mlsec-monitor"
  if [ -f "$unit" ]; then
    [ $have_systemd -eq 1 ] && "${sysctl[@]}" disable --now mlsec-monitor.service 2>/dev/null || true
    rm -f "$unit"; say "removed $unit"
    [ $have_systemd -eq 1 ] && "${sysctl[@]}" daemon-reload || true
  fi
  [ -f "$bindir/mlsec-monitor" ] && rm -f "$bindir/mlsec-monitor" && say "removed $bindir/mlsec-monitor"
  if [ $purge -eq 1 ]; then
    rm -rf "$confdir" "$datadir"; say "purged $confdir and $datadir"
  else
    say "kept config $confdir and data $datadir (use --purge to delete them)"
  fi
  exit 0
fi

here="$(cd "$(dirname "$0")" && pwd)"
echo "Installing mlsec-monitor"
if [ $build -eq 1 ]; then
  command -v cargo >/dev/null || { echo "install.sh: cargo not found; install the Rust toolchain (rustup.rs)" >&2; exit 1; }
  say "building the release binary (cargo build --release --locked)"
  (cd "$here" && cargo build --release --locked --quiet)
fi
bin="${given:-$here/target/release/mlsec-monitor}"
[ -x "$bin" ] || { echo "install.sh: $bin is missing; run without --no-build" >&2; exit 1; }

mkdir -p "$bindir"
# Nothing else this script creates is readable by others.
umask 027
mkdir -p "$confdir"
install -m 0755 "$bin" "$bindir/mlsec-monitor"; say "installed $bindir/mlsec-monitor"
mkdir -p "$datadir"; chmod 0700 "$datadir"
if [ $root -eq 1 ] && [ $staged -eq 0 ] && [ $have_systemd -eq 1 ]; then
  if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$datadir" --no-create-home \
      --shell /usr/sbin/nologin --comment "mlsec-monitor daemon" "$user"
    say "created system user $user"
  fi
  chown -R "$user:$user" "$datadir"
fi
say "data directory $datadir (0700)"

if [ -f "$conf" ]; then
  say "kept existing config $conf"
else
  # Every setting with its default, from the binary itself (so the list is
  # never out of date), commented out but for the data directory.
  {
    echo "# mlsec-monitor configuration. Environment variables of the same name in"
    echo "# upper case override these values; command-line flags override both."
    echo "# Run 'mlsec-monitor --config $conf config' to see the effective settings."
    echo "# Uncomment a line to change it. TLS: tls_cert_file, tls_key_file and"
    echo "# tls_client_ca_file take PEM files (see the README's Security section);"
    echo "# database_url and redis_url add optional probe targets."
    echo
    env -i PATH="$PATH" "$bindir/mlsec-monitor" config --data-dir "$datadir" \
      | grep -v '^#' | sed -e '/^data_dir = /!s/^\([a-z_]* = \)/# \1/'
  } > "$conf.new"
  chmod 0640 "$conf.new"
  mv "$conf.new" "$conf"
  say "wrote default config $conf (0640)"
fi
# Readable by the daemon's group, never by others (it may hold passwords).
chmod 0640 "$conf"; chmod 0750 "$confdir"
if [ $root -eq 1 ] && [ $staged -eq 0 ] && id -u "$user" >/dev/null 2>&1; then
  chgrp "$user" "$conf" "$confdir"
fi

if [ $system_unit -eq 1 ]; then
  # Its own user, nothing writable but the data directory, no privileges
  # to gain, files private whatever the daemon's umask.
  hardening="User=$user
Group=$user
UMask=0077
LimitNOFILE=65536
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths=$datadir
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
LockPersonality=true
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
CapabilityBoundingSet="
  wanted=multi-user.target
else
  # A user unit runs as the user; systemd offers it fewer protections.
  hardening="UMask=0077
LimitNOFILE=65536
NoNewPrivileges=true"
  wanted=default.target
fi
if [ $have_systemd -eq 1 ] || [ $staged -eq 1 ]; then
  mkdir -p "$unitdir"
  cat > "$unit" <<UNIT
[Unit]
Description=mlsec-monitor: monitoring and alerting for the ML security platform
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$bindir/mlsec-monitor --config $conf serve
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=30
$hardening

[Install]
WantedBy=$wanted
UNIT
  chmod 0644 "$unit"
  say "installed systemd unit $unit"
fi
if [ $have_systemd -eq 1 ]; then
  "${sysctl[@]}" daemon-reload || true
  if [ $enable -eq 1 ]; then
    "${sysctl[@]}" enable --now mlsec-monitor.service; say "enabled and started mlsec-monitor.service"
  else
    say "not enabled; to start at boot: ${sysctl[*]} enable --now mlsec-monitor.service"
  fi
elif [ $staged -eq 0 ]; then
  say "systemd not found: no unit installed"
fi

echo
echo "Start it now with:"
echo "  $bindir/mlsec-monitor --config $conf serve"
echo "then open http://127.0.0.1:8006/health"
