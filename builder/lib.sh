# shellcheck shell=bash
# builder/lib.sh — what every recipe shares.  A recipe sources this file,
# sets STEPS to its number of steps, and calls `step TEXT` before each.
#
# Invariants a recipe gets from here:
#   - progress goes to stderr as "[k/N] TEXT" lines; the chatter of the
#     tools (debootstrap, apt, mkfs) goes to a log that is printed (its
#     tail) only when the build fails, or live with HC_BUILD_VERBOSE=1;
#   - stdout carries nothing: `hc image build` keeps its stdout for the
#     resulting image, so every recipe's stdout is sent to stderr;
#   - the work dir (mktemp -d, never the host's root filesystem) and every
#     mount under it are gone when the recipe exits, on success, on failure
#     and on SIGINT/SIGTERM; anything still mounted under it blocks the
#     removal instead of letting `rm -rf` walk into a bind mount.
set -euo pipefail

export LC_ALL=C
# Tools in sbin (debootstrap, mkfs.ext4, sfdisk) may be missing from a
# non-root PATH.
export PATH="$PATH:/usr/sbin:/sbin"
umask 022
exec 1>&2

# shellcheck disable=SC2034 # for the recipes
BUILDER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RECIPE=$(basename "$0" .sh)
STEPS=${STEPS:-1}
STEP=0
WORK=
LOG=/dev/null
CLEANUPS=()

die() {
	printf '%s: %s\n' "$RECIPE" "$*" >&2
	exit 1
}

usage_die() {
	printf '%s: %s\n' "$RECIPE" "$*" >&2
	exit 2
}

step() {
	STEP=$((STEP + 1))
	printf '[%d/%d] %s\n' "$STEP" "$STEPS" "$*" >&2
	[ "$LOG" = /dev/null ] || printf '==== [%d/%d] %s\n' "$STEP" "$STEPS" "$*" >>"$LOG"
}

# A note under the current step (not numbered).
note() { printf '      %s\n' "$*" >&2; }

# run CMD...: the command's output goes to the log (or the terminal with
# HC_BUILD_VERBOSE=1); a failure names the command and ends the build.
run() {
	local rc=0
	if [ "${HC_BUILD_VERBOSE:-0}" = 1 ]; then
		"$@" || rc=$?
	else
		"$@" >>"$LOG" 2>&1 || rc=$?
	fi
	[ "$rc" -eq 0 ] || die "'$*' failed (exit $rc)"
}

need_tools() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (./scripts/deps.sh installs them)"
}

# on_exit CMD...: run CMD when the recipe ends, before the work dir goes;
# the last registered runs first.
on_exit() { CLEANUPS+=("$(printf '%q ' "$@")"); }

# Every mount point at or under $1, deepest first.
mounts_under() {
	local dir=$1
	awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
		sed 's/\\040/ /g' | sort -r
}

umount_under() {
	local m
	while IFS= read -r m; do
		[ -n "$m" ] || continue
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done < <(mounts_under "$1")
}

finish() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM HUP
	if [ "$rc" -ne 0 ] && [ -s "$LOG" ] && [ "${HC_BUILD_VERBOSE:-0}" != 1 ]; then
		echo "---- last lines of the build log" >&2
		tail -n 40 "$LOG" >&2
	fi
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[i]}" 2>/dev/null
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		umount_under "$WORK"
		if [ -n "$(mounts_under "$WORK")" ]; then
			echo "$RECIPE: still mounted under $WORK, left in place:" >&2
			mounts_under "$WORK" >&2
		else
			rm -rf --one-file-system "$WORK"
		fi
	fi
	exit "$rc"
}

# work_dir: make the work dir ($WORK) and the log, and arm the cleanup.
# Big scratch files go there, so it lives on disk ($HC_BUILD_TMPDIR,
# $TMPDIR or /var/tmp), not in a tmpfs /tmp.
work_dir() {
	local base=${HC_BUILD_TMPDIR:-${TMPDIR:-/var/tmp}}
	mkdir -p "$base"
	WORK=$(mktemp -d "$base/hc-build-$RECIPE.XXXXXX")
	LOG=$WORK/build.log
	: >"$LOG"
	trap finish EXIT
	# Exit through the EXIT trap on a signal, so the cleanup runs once.
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# cache_dir NAME: a directory for reusable downloads ($HC_BUILD_CACHE,
# default /var/cache/hackcloud/build, or ~/.cache/hackcloud/build when that
# is not writable); printed.
cache_dir() {
	local base=${HC_BUILD_CACHE:-}
	if [ -z "$base" ]; then
		base=/var/cache/hackcloud/build
		if ! mkdir -p "$base" 2>/dev/null || [ ! -w "$base" ]; then
			base=${XDG_CACHE_HOME:-$HOME/.cache}/hackcloud/build
		fi
	fi
	mkdir -p "$base/$1"
	(cd "$base/$1" && pwd)
}

# out_dir DIR: the recipe's output directory, made and made absolute.
out_dir() {
	mkdir -p "$1"
	(cd "$1" && pwd)
}

# publish SRC... DIR: move finished files into DIR, each atomically, so a
# reader of DIR never sees a half-written output.
publish() {
	local dir=${!#} f
	for f in "${@:1:$#-1}"; do
		mv -f "$f" "$dir/$(basename "$f")"
	done
}
