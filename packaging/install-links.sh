#!/bin/sh
# install-links.sh SRC DEST: at `meson install`, make under $DESTDIR/DEST
# every symlink SRC holds, as it is (dangling links into a guest's tree
# included), replacing whatever is there.
set -eu
src=$1
dest=${DESTDIR:-}$2
cd "$src"
find . -type l | while IFS= read -r link; do
	mkdir -p "$dest/$(dirname "$link")"
	ln -sfn "$(readlink "$link")" "$dest/$link"
done
