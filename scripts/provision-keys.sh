#!/bin/sh
# provision-keys.sh — the PMS host's SSH identity for ClusterPlex.
#
#   scripts/provision-keys.sh [--dir DIR] [--agent PATH] [--env-file PATH]
#                             [--authorized-keys FILE]
#
# Creates DIR/id_ed25519 (and .pub) unless it exists (default DIR:
# /etc/clusterplex, the default of CLUSTERPLEX_SSH_KEY), never replacing
# a key, and prints the line every worker's authorized_keys needs:
#
#   restrict,command="<agent> exec --env-file <env-file>" ssh-ed25519 ...
#
# `restrict` takes away pty, agent/X11/port forwarding and ~/.ssh/rc; the
# forced command makes sshd run the agent whatever the client asks for.
# With --authorized-keys FILE the line is also added to FILE (once).
# How workers get the line (file, environment, mounted secret): docs/shim.md.
set -eu

dir=/etc/clusterplex
agent=/usr/local/bin/clusterplex-agent
envfile=/etc/clusterplex/agent.env
authfile=

while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--agent) agent=$2; shift 2 ;;
	--env-file) envfile=$2; shift 2 ;;
	--authorized-keys) authfile=$2; shift 2 ;;
	-h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "provision-keys.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

case $agent$envfile in
*'"'*|*' '*) echo "provision-keys.sh: paths may not contain quotes or spaces" >&2; exit 2 ;;
esac

key=$dir/id_ed25519
if [ ! -f "$key" ]; then
	mkdir -p "$dir"
	chmod 700 "$dir"
	# Ed25519: libssh2 1.10 cannot sign with RSA-SHA2 for user auth.
	ssh-keygen -q -t ed25519 -N '' -C "clusterplex@$(hostname)" -f "$key"
	echo "provision-keys.sh: created $key" >&2
elif [ ! -f "$key.pub" ]; then
	ssh-keygen -y -f "$key" >"$key.pub"
fi
chmod 600 "$key"

line="restrict,command=\"$agent exec --env-file $envfile\" $(cat "$key.pub")"
if [ -n "$authfile" ]; then
	mkdir -p "$(dirname "$authfile")"
	touch "$authfile"
	grep -qxF "$line" "$authfile" || printf '%s\n' "$line" >>"$authfile"
	chmod 600 "$authfile"
fi
printf '%s\n' "$line"
