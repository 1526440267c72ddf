#!/usr/bin/env bash
# Install mlsec-monitor: build the release binary, install it, create the data
# directory, write a commented default config, and install a systemd unit when
# systemd is present (enabled only with --enable). Safe to run again.
#
#   ./install.sh [--prefix DIR] [--enable] [--no-build]
#   ./install.sh --uninstall [--purge] [--prefix DIR]
#
# Defaults: as root, binary in /usr/local/bin, config /etc/mlsec-monitor,
# data /var/lib/mlsec-monitor, unit /etc/systemd/system. As a user, binary in
# ~/.local/bin, config ~/.config/mlsec-monitor, data ~/.local/share/mlsec-monitor,
# unit ~/.config/systemd/user. With --prefix DIR everything lives under DIR
# (DIR/bin, DIR/etc/mlsec-monitor, DIR/var/lib/mlsec-monitor).
set -euo pipefail

prefix="" enable=0 uninstall=0 purge=0 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --enable) enable=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
conf="$confdir/config.toml"
unit="$unitdir/mlsec-monitor.service"
have_systemd=0; [ -d /run/systemd/system ] && command -v systemctl >/dev/null && have_systemd=1

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
bin="$here/target/release/mlsec-monitor"
[ -x "$bin" ] || { echo "install.sh: $bin is missing; run without --no-build" >&2; exit 1; }

mkdir -p "$bindir" "$confdir" "$datadir"
install -m 0755 "$bin" "$bindir/mlsec-monitor"; say "installed $bindir/mlsec-monitor"
say "data directory $datadir"

if [ -f "$conf" ]; then
  say "kept existing config $conf"
else
  cat > "$conf" <<CONF
# mlsec-monitor configuration. Environment variables of the same name in
# upper case override these values; command-line flags override both.
# Run 'mlsec-monitor --config $conf config' to see the effective settings.

data_dir = "$datadir"

# service_host = "0.0.0.0"
# service_port = 8006
# log_level = "INFO"                 # trace, debug, info, warn, error
# log_format = "text"                # text or json
# database_url = "postgres://user:password@127.0.0.1:5432/mlsec"   # optional probe target
# redis_url = "redis://127.0.0.1:6379/0"                           # optional probe target
# health_check_interval = 30         # seconds
# system_metrics_interval = 5        # seconds; also the raw tier's resolution
# flush_interval = 1                 # seconds; the most a crash can lose
# metrics_retention_days = 30        # the 1-hour tier
# alert_retention_days = 90
# dashboard_refresh_interval = 5     # seconds
# cors_allowed_origins = "*"         # or "https://a.example,https://b.example"
# max_series = 50000
CONF
  say "wrote default config $conf"
fi

if [ $have_systemd -eq 1 ]; then
  mkdir -p "$unitdir"
  cat > "$unit" <<UNIT
[Unit]
Description=mlsec-monitor: monitoring and alerting for the ML security platform
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$bindir/mlsec-monitor --config $conf serve
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=30

[Install]
WantedBy=$([ $root -eq 1 ] && echo multi-user.target || echo default.target)
UNIT
  say "installed systemd unit $unit"
  "${sysctl[@]}" daemon-reload || true
  if [ $enable -eq 1 ]; then
    "${sysctl[@]}" enable --now mlsec-monitor.service; say "enabled and started mlsec-monitor.service"
  else
    say "not enabled; to start at boot: ${sysctl[*]} enable --now mlsec-monitor.service"
  fi
else
  say "systemd not found: no unit installed"
fi

echo
echo "Start it now with:"
echo "  $bindir/mlsec-monitor --config $conf serve"
echo "then open http://127.0.0.1:8006/health"
