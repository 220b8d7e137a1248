#!/bin/sh
# check-docs.sh — every environment variable a binary reads is in the
# README's configuration tables, and every variable there is still read.
set -eu
cd "$(dirname "$0")/.."
pattern='"(CLUSTERPLEX_[A-Z_]+|ORCHESTRATOR_URL|TRANSCODE_[A-Z_]+|TRANSCODER_[A-Z_]+|PMS_[A-Z_]+|LISTENING_PORT|WORKER_SELECTION_STRATEGY|STAT_CPU_INTERVAL|FFMPEG_HWACCEL)"'
code=$(grep -rhoE "$pattern" shim agent dispatcher fuse common | tr -d '"' | sort -u)
readme=$(grep -oE '`[A-Z][A-Z0-9_]+`' README.md | tr -d '`' | sort -u)
status=0
for v in $code; do
	echo "$readme" | grep -qx "$v" || { echo "README.md: $v is read by the code but not documented"; status=1; }
done
for v in $(echo "$readme" | grep -E '^(CLUSTERPLEX_|TRANSCODE|PMS_)'); do
	echo "$code" | grep -qx "$v" || { echo "README.md: $v is documented but no binary reads it"; status=1; }
done
[ $status = 0 ] && echo "docs: $(echo "$code" | wc -w) variables, all in README.md"
exit $status
