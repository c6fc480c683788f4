#!/bin/sh
# install-conf.sh SAMPLE CONF: at `meson install`, put the installed sample
# hcd.conf at CONF unless a file is already there (an operator's
# configuration is never overwritten).  Both are under $DESTDIR when set.
set -eu
sample=${DESTDIR:-}$1
conf=${DESTDIR:-}$2
if [ -e "$conf" ]; then
	echo "install-conf: keeping the existing $conf (the new sample is $1)"
	exit 0
fi
install -D -m 0644 "$sample" "$conf"
echo "install-conf: installed $conf"
