#!/bin/sh
# Extracts whatlang's Latin and Cyrillic language models (alphabets and trigram profiles)
# into src/routing/whatlang_models.txt, the data polyrelay's faster scorer reads
# (src/routing/scorer.rs). whatlang is MIT-licensed (https://github.com/greyblake/whatlang-rs,
# Serhii Potapov); the models are its, unchanged.
#
#   sh tools/whatlang-models/extract.sh [path/to/whatlang-0.18.0] > src/routing/whatlang_models.txt
#
# Without an argument it takes the whatlang 0.18.0 sources from the cargo registry (run
# `cargo fetch` first). The test `scorer::tests::models_match_whatlang` checks that the
# extracted models give whatlang's answers.
set -eu
SRC=${1:-$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/whatlang-0.18.0 | head -n 1)}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$SRC/Cargo.toml" | head -n 1)
echo "# whatlang $VERSION language models (MIT, Serhii Potapov),"
echo "# extracted by tools/whatlang-models/extract.sh. One line per model:"
echo "# <script> alphabet <lang> <letters>   or   <script> profile <lang> <300 trigrams, 3 chars each>"
for script in latin cyrillic; do
  # Alphabets: `const AFR: &str = "...";`, some split over two lines.
  tr '\n' ' ' < "$SRC/src/alphabets/$script.rs" |
    grep -o 'const [A-Z][A-Z][A-Z]: &str = *"[^"]*"' |
    sed 's/const \([A-Z]*\): &str = *"\(.*\)"/\1 \2/' |
    while read -r name letters; do
      echo "$script alphabet $(echo "$name" | tr 'A-Z' 'a-z') $letters"
    done
done
# Profiles: `(Lang::Spa, &[ Trigram(' ', 'd', 'e'), ... ])` per language, per script list.
awk '
  /pub static LATIN_LANGS/ { script = "latin" }
  /pub static CYRILLIC_LANGS/ { script = "cyrillic" }
  /pub static ARABIC_LANGS/ { script = "" }
  script != "" && /Lang::/ {
    if (line != "") print line
    match($0, /Lang::[A-Za-z]+/)
    lang = tolower(substr($0, RSTART + 6, RLENGTH - 6))
    line = script " profile " lang " "
  }
  script != "" && /Trigram\(/ {
    s = $0
    sub(/^[ \t]*Trigram\(./, "", s)
    a = substr(s, 1, index(s, "'"'"'") - 1); sub(/^[^,]*, ./, "", s)
    b = substr(s, 1, index(s, "'"'"'") - 1); sub(/^[^,]*, ./, "", s)
    c = substr(s, 1, index(s, "'"'"'") - 1)
    line = line a b c
  }
  script == "" && line != "" { print line; line = "" }
  END { if (line != "") print line }
' "$SRC/src/trigrams/profiles.rs"
